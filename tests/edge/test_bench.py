from edge.bench import bench_ingest
from edge.config import default_config_path, load_config


def test_bench_ingest_sees_every_weight_event():
    cfg = load_config(default_config_path(), env={})
    result = bench_ingest(cfg, shelves=2, plates=3, seconds=0.3)
    assert result["messages"] > 0
    assert result["weight_events"] == result["weight_events_expected"] > 0
