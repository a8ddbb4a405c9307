"""Site configuration: the site file and every check made before the hub
opens anything.

* `yamlfile` — YAML with file and line kept on every mapping, for errors;
* `values` — typed values (durations, flags, topics, broker addresses,
  quiet hours), shared by every validator;
* `site` — the site file itself: site → buildings → flats → residents, and
  devices;
* `preflight` — everything `anju config check` and `anju hub run` check
  before opening a connection.

Validation is pure and errors name the file, line and key. Nothing here opens
a connection, and a key that no level knows is an error, never ignored.
"""
