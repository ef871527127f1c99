"""Clients of the outside services PoZapisi talks to, shared by the web app and the workers.

A module here speaks one service's protocol and nothing of ours: the routes and the workers
both import it, and it imports neither (``.importlinter`` keeps it so).
"""
