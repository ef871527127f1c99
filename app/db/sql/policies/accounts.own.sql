-- A person's account (name, phone, e-mail, Telegram id, avatar) is theirs alone: the app reaches
-- the row of the account its transaction acts for (app.account_id) and no other. Before anyone
-- is signed in, an account is found or created only through the SECURITY DEFINER functions
-- pz_account_for_telegram and pz_account_for_contact, which return its id and nothing more.
DROP POLICY IF EXISTS own ON accounts;
CREATE POLICY own ON accounts TO pozapisi_app
  USING (id = app_account_id()) WITH CHECK (id = app_account_id());
