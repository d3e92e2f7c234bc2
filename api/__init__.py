"""sleeve over HTTP: a read-only JSON API of one index for shops' and catalogues' own web sites.

A package beside ``webapp/`` rather than a module of ``recsys``: like the Streamlit app it is a front end
of the library, so the library stays free of web frameworks and every answer comes from the same calls that
the CLI and the app make. ``api.generations`` follows the index as build-index rewrites it, ``api.app``
declares the endpoints and ``api.server`` runs them on uvicorn.
"""
