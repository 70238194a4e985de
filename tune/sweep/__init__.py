"""The sweep: its presets and search spaces, the checks of its flags, its folder and records, one Tuner per
architecture with its trial failures, times and checkpoints, and the retrains of each best configuration
(`orchestration`). Imports the engine; nothing of analysis/ or report/."""
