-- The idempotency key of a notification: the event, the booking ('-' for none), the channel,
-- the recipient (a<account id>, else x<address>) and the scheduled time in UTC to the second,
-- written as Python's datetime.isoformat(timespec='seconds') writes a UTC time. The unique
-- index on notifications.idempotency_key lets a retried transaction or a second scheduler
-- queue each message once, which holds only while every writer builds the key the same way:
-- pz_booking_insert and erase_account_data call this, and Python's
-- app.domain.outbox.Outgoing.key_for must give the same text (a test compares them).
--
-- IMMUTABLE: to_char is only STABLE because some patterns depend on the locale; this one
-- (digits and fixed separators) does not.
-- Executable by every role (PostgreSQL's default): a pure function of its arguments, for the
-- app's and the workers' own INSERTs too.
CREATE OR REPLACE FUNCTION pz_notification_key(p_event text, p_booking_id bigint,
                                               p_channel text, p_account_id bigint,
                                               p_address text, p_scheduled_at timestamptz)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT concat_ws(':', p_event, coalesce(p_booking_id::text, '-'), p_channel,
                   CASE WHEN p_account_id IS NOT NULL THEN 'a' || p_account_id
                        ELSE 'x' || coalesce(p_address, '') END,
                   to_char(p_scheduled_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
                     || '+00:00')
$$;
