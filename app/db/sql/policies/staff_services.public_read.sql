-- Part of a business's public profile (name, services, masters, hours), shown by its slug
-- to anybody: readable across tenants, writable only through the tenant policy.
DROP POLICY IF EXISTS public_read ON staff_services;
CREATE POLICY public_read ON staff_services FOR SELECT USING (true);
