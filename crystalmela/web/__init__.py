"""The web service (paper §4): accounts, uploads, runs kept in a database, a JSON API.

``create_app(settings)`` builds the FastAPI application; ``crystalmela serve`` runs it. Pages and
the API share ``service``: the API is the pages' contract, not a second implementation.
"""
