"""Running on Ray: joining or starting a cluster (`cluster`, `loopback`, `ray_temp`), the checks before any
training (`preflight`, `node_check`, `storage`), launching a run of the loop as a retrain task or a Ray Train run
(`launch`), and telling the cluster's failures from a run's own (`lost_node`, `disk_full`). Imports every room of
the engine but bench/."""
