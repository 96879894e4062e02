"""The ASGI app, the HTTP edge, configuration, start-up and the ``medfed`` command line."""
