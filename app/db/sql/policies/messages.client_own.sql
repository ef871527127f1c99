-- A client sees the correspondence of their own client cards in every business.
DROP POLICY IF EXISTS client_own ON messages;
CREATE POLICY client_own ON messages FOR SELECT USING (EXISTS (SELECT 1 FROM clients c
  WHERE c.id = messages.client_id AND c.account_id = app_account_id()));
