from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from edge.cli import app
from edge.config import ConfigError, default_config_path, load_config

runner = CliRunner()


def _write(tmp_path: Path, data: dict) -> Path:
    planogram = default_config_path().parent / "planogram.yaml"
    data.setdefault("planogram", str(planogram))
    path = tmp_path / "store.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _base() -> dict:
    return yaml.safe_load(default_config_path().read_text())


def test_default_config_is_valid():
    cfg = load_config(default_config_path(), env={})
    assert cfg.mqtt.broker == "embedded"
    assert cfg.planogram.exists()


def test_typo_names_the_exact_key(tmp_path):
    data = _base()
    data["mqtt"]["keepalive"] = 10  # the key is keepalive_s
    with pytest.raises(ConfigError, match=r"mqtt\.keepalive: Extra inputs are not permitted"):
        load_config(_write(tmp_path, data), env={})


def test_wrong_type_names_the_key(tmp_path):
    data = _base()
    data["detector"]["settle_samples"] = "many"
    with pytest.raises(ConfigError, match=r"detector\.settle_samples"):
        load_config(_write(tmp_path, data), env={})


def test_env_overrides_secrets_and_urls(tmp_path):
    env = {
        "STOREEDGE_MQTT__BROKER": "mqtt://broker.local:1884",
        "STOREEDGE_MQTT__PASSWORD": "s3cret",
    }
    cfg = load_config(_write(tmp_path, _base()), env=env)
    assert cfg.mqtt.broker_address() == ("broker.local", 1884)
    assert cfg.mqtt.password is not None
    assert cfg.mqtt.password.get_secret_value() == "s3cret"
    assert "s3cret" not in cfg.model_dump_json()


def test_unknown_env_key_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match=r"mqtt\.pasword"):
        load_config(_write(tmp_path, _base()), env={"STOREEDGE_MQTT__PASWORD": "x"})


def test_bad_broker_url(tmp_path):
    data = _base()
    data["mqtt"]["broker"] = "http://x"
    with pytest.raises(ConfigError, match=r"mqtt\.broker"):
        load_config(_write(tmp_path, data), env={})


def test_cli_config_check_reports_the_key(tmp_path):
    data = _base()
    data["api"]["prot"] = 1
    result = runner.invoke(app, ["config", "check", str(_write(tmp_path, data))])
    assert result.exit_code == 2
    assert "api.prot" in result.output


def test_cli_config_check_ok():
    result = runner.invoke(app, ["config", "check", str(default_config_path())])
    assert result.exit_code == 0, result.output
    assert "OK" in result.output
    assert "3 shelves" in result.output


def test_cli_help_reads_well():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("demo", "config", "gateway"):
        assert command in result.output
