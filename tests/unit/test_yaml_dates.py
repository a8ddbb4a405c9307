"""An impossible date in a site file is a configuration error naming its line,
not a crash inside the YAML parser."""
import pytest

from hub import ConfigError
from hub.config import site as config
from hub.config import yamlfile

SITE = """site: {id: sunrise}
buildings:
  - id: b1
    flats:
      - id: b1-101
        residents:
          - id: r-101
            name: Wang Lan
            role: tenant
            from: %s
devices: []
"""


def test_impossible_unquoted_date_names_the_line():
    with pytest.raises(ConfigError, match=r"^site\.yaml:10: key 'from': '2026-13-01'"):
        config.parse_site(yamlfile.loads(SITE % "2026-13-01", "site.yaml"))


def test_valid_unquoted_date_is_read():
    site = config.parse_site(yamlfile.loads(SITE % "2026-01-31", "site.yaml"))
    assert str(site.residents["r-101"].valid_from) == "2026-01-31"
