"""The property-office console (docs/console.md): the pages the hub serves
itself, from `static/` beside this file, over the same aiohttp server and loop
as the HTTP API.

    files.py   the route table entries of the console's files (open, read-only)
               and of `GET /api/site` (the site's name and time zone)
    static/    plain HTML, CSS and JavaScript (no build step), the message
               catalogues in static/i18n/

The pages change nothing by themselves: every change is a call of the
documented API, made with the logged-in account's session and CSRF token.
This package must never serve a file from outside `static/`.
"""
