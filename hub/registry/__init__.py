"""The site registry: buildings, flats, residents and devices, kept in SQLite
with every device key sealed under the key-encryption key.

* `db` — the registry database, its CRUD and its audit; `kek` — the
  key-encryption key (AES-256-GCM) and its file;
* `csvfile` — CSV import and export; `routes` — its HTTP routes.

The registry is what the hub's site configuration is rebuilt from when it
changes. It never returns or logs a key in clear outside the hub process and
never changes a record without an actor.
"""
