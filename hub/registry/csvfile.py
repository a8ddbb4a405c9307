"""CSV import and export for the site registry (docs/registry.md).

Two files, each optional on import:

    residents.csv  building,flat,resident_id,name,phone,lives_alone,elderly,role,
                   registered_from,registered_until,credentials[,registered]
    devices.csv    device_id,kind,board,flat,entrance,transport,heartbeat,ble_address,
                   frame_key,bind_key

Row 1 is the header; data rows are numbered from 2, as a spreadsheet shows
them. Every error names the file, the row and the column. Rows become site
document entries whose `where()` is "devices.csv row 3, column frame_key", so
the errors of `hub.config.parse_site` (the one validator) point at the cell.

This module only converts; it never validates the site itself and never
writes anything. Keys are written out only when the caller passes them in.
"""
import csv
import io
import os

from hub import ConfigError
from hub.config import yamlfile

RESIDENT_COLUMNS = ("building", "flat", "resident_id", "name", "phone", "lives_alone", "elderly",
                    "role", "registered_from", "registered_until", "credentials")
RESIDENT_OPTIONAL = ("registered",)
RESIDENT_REQUIRED = ("building", "flat", "resident_id", "name")
DEVICE_COLUMNS = ("device_id", "kind", "board", "flat", "entrance", "transport", "heartbeat",
                  "ble_address", "frame_key", "bind_key")
DEVICE_REQUIRED = ("device_id", "kind", "board", "transport")
KEY_COLUMNS = ("frame_key", "bind_key")

# column -> document field, where they differ
FIELD = {"resident_id": "id", "device_id": "id", "registered_from": "from",
         "registered_until": "until"}
BOOLEAN = ("lives_alone", "elderly", "registered")
LISTS = ("credentials",)  # separated by ';' inside the cell
TRUE, FALSE = ("true", "yes", "1", "y"), ("false", "no", "0", "n")
FILES = {"residents.csv": "residents", "devices.csv": "devices"}


class CsvError(ConfigError):
    """A CSV file that cannot be read; the message names file, row and column."""


class CsvNode(yamlfile.Node):
    """A document entry made from one CSV row; locates errors by row and column."""

    def __init__(self, filename, row, columns):
        yamlfile.Node.__init__(self)
        self.file, self.line = filename, row
        self._columns = columns  # document field -> column name

    def where(self, key=None):
        if key is not None and key in self._columns:
            return "%s row %d, column %s" % (self.file, self.line, self._columns[key])
        return "%s row %d" % (self.file, self.line)


def _read(text, filename, allowed, required):
    """[(row number, {column: text})] with empty cells left out."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise CsvError("%s: not UTF-8 text" % filename) from exc
    text = text.lstrip("\ufeff")
    try:
        records = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise CsvError("%s: not valid CSV: %s" % (filename, exc)) from exc
    if not records:
        raise CsvError("%s: empty; row 1 must be the header: %s" % (filename, ",".join(allowed)))
    header = [h.strip() for h in records[0]]
    for i, name in enumerate(header):
        if name not in allowed:
            raise CsvError("%s row 1, column %d: unknown column '%s'; allowed: %s"
                           % (filename, i + 1, name, ", ".join(allowed)))
        if header.index(name) != i:
            raise CsvError("%s row 1, column %d: column '%s' appears twice" % (filename, i + 1, name))
    missing = [c for c in required if c not in header]
    if missing:
        raise CsvError("%s row 1: missing column(s) %s" % (filename, ", ".join(missing)))
    rows = []
    for n, cells in enumerate(records[1:], start=2):
        if not any(c.strip() for c in cells):
            continue
        if len(cells) > len(header):
            raise CsvError("%s row %d: %d cells, but the header has %d columns"
                           % (filename, n, len(cells), len(header)))
        rows.append((n, {h: c.strip() for h, c in zip(header, cells) if c.strip()}))
    return rows


def _value(column, text, filename, row):
    if column in BOOLEAN:
        low = text.lower()
        if low in TRUE:
            return True
        if low in FALSE:
            return False
        raise CsvError("%s row %d, column %s: '%s' is not true or false"
                       % (filename, row, column, text))
    if column in LISTS:
        return [part.strip() for part in text.split(";") if part.strip()]
    return text


def _node(filename, row, cells, columns):
    node = CsvNode(filename, row, {FIELD.get(c, c): c for c in columns})
    for column, text in cells.items():
        node[FIELD.get(column, column)] = _value(column, text, filename, row)
    return node


def parse_files(files):
    """{"residents.csv": text, "devices.csv": text} -> {"residents": [...], "devices": [...]}."""
    if not files:
        raise CsvError("no CSV file given; expected residents.csv and/or devices.csv")
    out = {}
    for name, text in files.items():
        base = os.path.basename(str(name))
        if base not in FILES:
            raise CsvError("%s: unknown CSV file; expected residents.csv or devices.csv" % name)
        if FILES[base] == "residents":
            out["residents"] = [(n, cells) for n, cells in
                                _read(text, base, RESIDENT_COLUMNS + RESIDENT_OPTIONAL,
                                      RESIDENT_REQUIRED[:2])]
        else:
            out["devices"] = [_node(base, n, cells, DEVICE_COLUMNS)
                              for n, cells in _read(text, base, DEVICE_COLUMNS, DEVICE_REQUIRED)]
    return out


def _residents(doc, rows):
    """Buildings → flats → residents from residents.csv rows; building and flat
    settings already in `doc` (names, rules, inactivity) are kept."""
    f_name = "residents.csv"
    old_b = {str(b.get("id")): b for b in doc.get("buildings") or [] if isinstance(b, dict)}
    old_f = {str(f.get("id")): f for b in old_b.values() for f in b.get("flats") or []
             if isinstance(f, dict)}
    buildings, flats, flat_building = {}, {}, {}
    columns = RESIDENT_COLUMNS + RESIDENT_OPTIONAL
    for n, cells in rows:
        for column in ("building", "flat"):
            if column not in cells:
                raise CsvError("%s row %d, column %s: required" % (f_name, n, column))
        bid, fid = cells.pop("building"), cells.pop("flat")
        if fid in flat_building and flat_building[fid] != bid:
            raise CsvError("%s row %d, column building: flat '%s' is in building '%s' on an "
                           "earlier row" % (f_name, n, fid, flat_building[fid]))
        if bid not in buildings:
            b = CsvNode(f_name, n, {"id": "building"})
            b.update({k: v for k, v in old_b.get(bid, {}).items() if k != "flats"})
            b["id"] = bid
            b["flats"] = []
            buildings[bid] = b
        if fid not in flats:
            f = CsvNode(f_name, n, {"id": "flat"})
            f.update({k: v for k, v in old_f.get(fid, {}).items() if k != "residents"})
            f["id"] = fid
            f["residents"] = []
            flats[fid] = f
            flat_building[fid] = bid
            buildings[bid]["flats"].append(f)
        if not cells:
            continue  # a flat with nobody registered in it
        if "resident_id" not in cells:
            raise CsvError("%s row %d, column resident_id: required when the row names a resident"
                           % (f_name, n))
        flats[fid]["residents"].append(_node(f_name, n, cells, columns))
    return list(buildings.values())


def merge(doc, parsed):
    """The current document with the parts the CSV files replace."""
    if "residents" in parsed:
        doc["buildings"] = _residents(doc, parsed["residents"])
    if "devices" in parsed:
        doc["devices"] = parsed["devices"]
    return doc


# ---- export ----------------------------------------------------------------------------
def _cell(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ";".join(str(v) for v in value)
    return str(value)


def _write(columns, rows):
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(columns)
    for row in rows:
        w.writerow([_cell(row.get(c)) for c in columns])
    return out.getvalue()


def export(doc, with_keys=False):
    """{"residents.csv": text, "devices.csv": text} from a site document
    (which holds keys only if the caller put them in)."""
    inverse = {"id": None, "from": "registered_from", "until": "registered_until"}
    residents = []
    for b in doc.get("buildings") or []:
        for f in b.get("flats") or []:
            people = f.get("residents") or []
            if not people:
                residents.append({"building": b.get("id"), "flat": f.get("id")})
            for r in people:
                row = {"building": b.get("id"), "flat": f.get("id"), "resident_id": r.get("id")}
                for k, v in r.items():
                    if k != "id":
                        row[inverse.get(k) or k] = v
                residents.append(row)
    res_columns = RESIDENT_COLUMNS + tuple(
        c for c in RESIDENT_OPTIONAL if any(c in r for r in residents))
    devices = []
    for d in doc.get("devices") or []:
        row = dict(d)
        row["device_id"] = d.get("id")
        devices.append(row)
    dev_columns = tuple(c for c in DEVICE_COLUMNS if with_keys or c not in KEY_COLUMNS)
    return {"residents.csv": _write(res_columns, residents),
            "devices.csv": _write(dev_columns, devices)}
