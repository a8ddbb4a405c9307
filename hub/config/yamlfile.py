"""YAML loading that remembers line numbers, for errors that point at the line.

Mappings load as `Node` dicts carrying `.file`, `.line` and `.key_lines`, so a
validator can say "site.yaml:14: key 'inactivity': ..." instead of a traceback.
"""
import yaml

from hub import ConfigError


class Node(dict):
    file = "<config>"
    line = 0

    def __init__(self, *args, **kwargs):
        dict.__init__(self, *args, **kwargs)
        self.key_lines = {}

    def where(self, key=None):
        line = self.key_lines.get(key, self.line) if key is not None else self.line
        return "%s:%d" % (self.file, line)


class _Loader(yaml.SafeLoader):
    pass


def _construct_mapping(loader, node):
    loader.flatten_mapping(node)
    out = Node()
    out.file = loader.anju_file
    out.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, (str, int)):
            raise ConfigError("%s:%d: mapping keys must be strings"
                              % (loader.anju_file, key_node.start_mark.line + 1))
        if key in out:
            raise ConfigError("%s:%d: duplicate key '%s'"
                              % (loader.anju_file, key_node.start_mark.line + 1, key))
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[key] = key_node.start_mark.line + 1
    return out


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
# Dates stay text: the validators parse them and name the line when one is
# impossible (PyYAML would raise a bare ValueError for 2026-13-01).
_Loader.add_constructor("tag:yaml.org,2002:timestamp",
                        lambda loader, node: loader.construct_scalar(node))


def loads(text, filename="<config>", mapping=True):
    loader = _Loader(text)
    loader.anju_file = filename
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = "%d" % (mark.line + 1) if mark is not None else "?"
        raise ConfigError("%s:%s: not valid YAML: %s" % (filename, line,
                                                       getattr(exc, "problem", exc))) from exc
    finally:
        loader.dispose()
    if mapping and not isinstance(data, Node):
        what = "empty" if data is None else "a YAML %s" % ("list" if isinstance(data, list)
                                                           else "scalar")
        raise ConfigError("%s: the file is %s; it must be a mapping of keys to values"
                          % (filename, what))
    return data


def load(path, mapping=True):
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise ConfigError("%s: cannot read: %s" % (path, exc.strerror)) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError("%s: not UTF-8 text" % path) from exc
    return loads(text, str(path), mapping)
