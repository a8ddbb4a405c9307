"""Responders on duty (police, auxiliary police, grid workers, volunteers):
who they are comes from the site file's `responders:` (hub/config/plan.py),
where they are from their own reports (docs/console.md, "Responders").

    board.py   pure parsing of a position report, the nearest responder, and
               `ResponderBoard`: the latest position of each, kept in memory,
               telling its listeners (the console's live stream) of each change
    mqtt.py    the component reading `anju/<site>/responders/<id>/position` on
               the site broker with the hub's login

Positions are plan coordinates (the units of `site.plan`), not latitude and
longitude. A report over HTTP (`POST /api/responders/<id>/position`,
hub/console/plan.py) and one over MQTT end in the same `ResponderBoard.report`.
Errors: `PositionInvalid` (a ValueError) for a report that cannot be used.
"""
