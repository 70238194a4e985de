"""Sweep presets: how a sweep spends each run preset (jobs/engine/presets.py): trials per architecture, seeds of
the final retrain, what a trial trains on, and the CPUs of a trial's worker. Data only.
"""

# How a sweep spends each preset: trials per architecture, seeds of the final retrain, and what a trial
# trains on (a search needs a ranking, not the final number, so trials may see less data than the retrain).
# `trial_models` narrows a trial further for one architecture (the retrain still sees the preset's data).
# `keep_default` names search keys a preset does not search (the model's default is used): on a 2-core CPU the
# FPN backbones of faster_rcnn alone would take longer than the whole quick sweep.
SWEEPS: dict[str, dict] = {
    # smoke proves the plumbing, one trial per model; choosing among trials is what quick and full are for.
    # ResNet-18 keeps the preset's batch 16: a sampled batch of 64 leaves its retrain 12 steps, after which the
    # batch-norm statistics are still off and the test accuracy lands anywhere from 8% to 31% (81.8% at batch 16).
    "smoke": {"samples": 1, "seeds": 1, "trial": {}, "trial_models": {},
              "keep_default": {"faster_rcnn": ["backbone"], "resnet18": ["batch_size"]}},
    # ResNet-18 trains at ~25 img/s per trial when two share the 2 cores: its trials see 3,000 images, so
    # that `make sweep` (all six) stays under 20 minutes while every model is tested on all 10,000 images.
    # Quick trials last one epoch: 4 validation checks in it give ASHA rungs to stop weak trials at. ResNet-18's
    # check costs ~8 s on a core, so 2; the detector's is a mAP over 500 canvases on the sweep's critical path
    # (its search is the longest), so it checks once and ASHA cannot stop it in this preset.
    "quick": {"samples": 2, "seeds": 1, "trial": {"epochs": 1, "val_checks_per_epoch": 4},
              "trial_models": {"resnet18": {"train_limit": 3_000, "val_checks_per_epoch": 2},
                               "faster_rcnn": {"val_checks_per_epoch": 1}},
              "keep_default": {"faster_rcnn": ["backbone"]}},
    "full": {"samples": 12, "seeds": 3, "trial": {}, "trial_models": {}, "keep_default": {}},
}

# CPUs of one worker in a sweep trial: one. Two single-threaded workers train faster than one worker with two
# threads (BENCHMARKS.md, data parallelism: 2 x 1 thread 1,582 img/s, 1 x 2 threads 967 img/s, cnn on this
# 2-core CPU), so a trial holds one CPU and as many trials run at once as the cluster has CPUs.
CPUS_PER_TRIAL_WORKER = 1.0
