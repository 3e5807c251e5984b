import pytest

from hapo_rl.common.runtime import tune_process

# Small networks on a 2-core machine: the same process settings as a training run.
tune_process()


@pytest.fixture(autouse=True)
def _sb3_logdir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep stable-baselines3's default logger folder (one per `learn`) out of /tmp."""
    monkeypatch.setenv("SB3_LOGDIR", str(tmp_path_factory.mktemp("sb3")))
