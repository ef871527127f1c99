"""Background work on SAQ: the notification relay and its channels, reminders, housekeeping.

Start with ``workers/runner.py`` (queue, jobs, cron, how a worker runs), then
``workers/relay.py`` (how a notification row is delivered exactly once where it can be).
"""
