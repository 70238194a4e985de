"""Presets: how much data and how many epochs a run uses, and each model's sensible defaults.

Data only. `smoke` proves the plumbing in seconds, `quick` gives a meaningful ranking in a minute or two per
model on a 2-core CPU, `full` trains on everything for the numbers we publish.
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
    "quick": {"samples": 2, "seeds": 1, "trial": {"epochs": 1}, "trial_models": {"resnet18": {"train_limit": 3_000}},
              "keep_default": {"faster_rcnn": ["backbone"]}},
    "full": {"samples": 12, "seeds": 3, "trial": {}, "trial_models": {}, "keep_default": {}},
}

# CPUs of one worker in a sweep trial: one. Two single-threaded workers train faster than one worker with two
# threads (BENCHMARKS.md, data parallelism: 2 x 1 thread 1,582 img/s, 1 x 2 threads 967 img/s, cnn on this
# 2-core CPU), so a trial holds one CPU and as many trials run at once as the cluster has CPUs.
CPUS_PER_TRIAL_WORKER = 1.0

# GPU share of one Train worker in a sweep trial: small models share a card so several trials run at once.
# NOT YET MEASURED (no GPU was lent to the tasks that wrote this): scripts/gpu_measure.sh records each model's
# peak memory and images/s on a card; set each share from those and cite them here.
GPU_PER_TRIAL_WORKER: dict[str, float] = {
    "cnn": 0.25, "vit": 0.5, "resnet18": 0.5, "alexnet": 0.5, "vgg16": 1.0, "faster_rcnn": 1.0,
}

PRESETS: dict[str, dict] = {
    "smoke": {
        "loop": {"epochs": 1, "train_limit": 1024, "val_limit": 512, "test_limit": 1000, "batch_size": 64},
        "models": {
            # 256 train canvases (2 digits each), 128 + 256 val and 250 + 500 test images: ~40 s on 2 cores.
            "faster_rcnn": {"train_limit": 512, "val_limit": 256, "test_limit": 500, "batch_size": 16},
            # The default ViT (49 tokens) needs a few hundred steps to leave chance; 2 blocks over 4 patches of
            # 14px learn in 64 steps (train loss ~1.2), in a few seconds: the plumbing is the same.
            "vit": {"patch_size": 14, "depth": 2, "lr": 2e-3, "epochs": 2, "batch_size": 32},
            # ~80 img/s on 2 cores (stride-1 stem at 28x28): 32 steps of 16 and small eval sets.
            "resnet18": {"lr": 1e-3, "train_limit": 512, "val_limit": 256, "test_limit": 500, "batch_size": 16},
            # Frozen ImageNet features, ~100 img/s; batch 128 halves the AdamW steps over its 120M-weight classifier.
            "vgg16": {"lr": 1e-3, "batch_size": 128, "val_limit": 256, "test_limit": 500},
            "alexnet": {"lr": 1e-3},  # frozen ImageNet features: ~260 img/s
        },
    },
    "quick": {
        "loop": {"epochs": 2, "train_limit": 12_000, "val_limit": 2_000, "test_limit": 0},
        "models": {
            # 2,000 canvases x 2 epochs at ~55 canvases/s per core (a ranking, not a result). Batch 8, not 16: twice
            # the steps for the same time; the sweep's retrain config (lr 3.4e-3, anchors 16-24-32-48) went from
            # 44.1% test accuracy / mAP@.5 0.46 to 62.0% / 0.71 (seed 1: 67.1% / 0.72), 89 s of training either way.
            "faster_rcnn": {"train_limit": 4_000, "val_limit": 1_000, "test_limit": 1_000, "batch_size": 8},
            # A ViT needs steps more than images: batch 32 gives 750 (test acc ~87%; batch 128: ~51%), ~2 min.
            "vit": {"lr": 1e-3, "batch_size": 32},
            # The big ones see less so that each stays near two minutes on 2 cores (a ranking, not a result):
            # ResNet-18 ~80 img/s, VGG16 (frozen) ~100 img/s, AlexNet (frozen) ~260 img/s.
            # Every model is tested on all 10,000 test images, so that McNemar's test can pair any two of them.
            "resnet18": {"lr": 1e-3, "epochs": 1, "train_limit": 6_000, "val_limit": 1_000},
            "vgg16": {"lr": 1e-3, "epochs": 1, "train_limit": 6_000, "batch_size": 128, "val_limit": 1_000},
            "alexnet": {"lr": 1e-3, "epochs": 1, "batch_size": 128},
        },
    },
    "full": {
        "loop": {"epochs": 10, "test_limit": 0},
        "models": {
            "cnn": {"epochs": 12, "lr": 3e-3},
            # A ViT from scratch needs many more steps than a CNN; Adam at 3e-3 is too hot for attention.
            "vit": {"epochs": 40, "lr": 1e-3},
            "resnet18": {"epochs": 10, "lr": 1e-3},
            # Fine-tuning: the head at 1e-3, pre-trained layers at 1e-4 (backbone_lr_scale 0.1).
            "vgg16": {"epochs": 5, "lr": 1e-3},
            "alexnet": {"epochs": 5, "lr": 1e-3},
            # For a GPU: 27,500 canvases x 15 epochs, a wider backbone and larger RoI/RPN samples.
            "faster_rcnn": {"epochs": 15, "batch_size": 32, "lr": 3e-3, "grad_clip": 10.0, "width": 64,
                            "representation_size": 512, "rpn_batch_size_per_image": 128,
                            "box_batch_size_per_image": 64},
        },
        # Applied on a CUDA worker only, over the settings above (an explicit `--set` or a sweep's sampled value
        # still wins; set lr with batch_size, they belong together). A captured step costs about the same at
        # batch 128 as at 512 for these small nets, so larger batches are the GPU's throughput; the learning
        # rate grows with the square root of the batch (Adam's usual rule).
        # UNTESTED ON A GPU: none was lent when these were written. Measure with scripts/gpu_measure.sh: test
        # accuracy of each row against its CPU-preset figure in BENCHMARKS.md (cnn >= 99.5%, vit >= 99.0%,
        # resnet18 >= 99.5%) and img/s; where the accuracy drops, halve the batch (and lr by sqrt 2).
        "gpu": {
            "loop": {"eval_batch_size": 5_000},  # val 5,000 and test 10,000 in one or two forwards, bf16
            "models": {
                "cnn": {"batch_size": 512, "lr": 6e-3},
                # A ViT needs steps: only twice the batch, so 40 epochs still give ~8,600 of them.
                "vit": {"batch_size": 256, "lr": 1.4e-3},
                "resnet18": {"batch_size": 256, "lr": 1.4e-3},
            },
        },
    },
}
