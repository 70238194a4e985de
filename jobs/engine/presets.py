"""Run presets: how much data and how many epochs a run uses, and each model's sensible settings. Data only.

`smoke` proves the plumbing in seconds, `quick` gives a meaningful ranking in a minute or two per model on a
2-core CPU, `full` trains on everything for the numbers we publish. Every value here is checked against the
declared config (jobs/engine/config.py) by tests/test_compile.py.
"""

PRESETS: dict[str, dict] = {
    "smoke": {
        # The final checks only prove their plumbing here: a throughput batch of 32 and 64 images a corruption keep
        # them to a few seconds even for ResNet-18 (~65 img/s on a core in fp32), whose batch of 256 and 200
        # images a corruption cost ~40 s of every smoke sweep (BENCHMARKS.md, `make test`).
        "loop": {"epochs": 1, "train_limit": 1024, "val_limit": 512, "test_limit": 1000, "batch_size": 64,
                 "robustness_images": 64, "serving_batch": 32, "onnx_check_images": 256},
        "models": {
            # 256 train canvases (2 digits each), 128 + 256 val and 250 + 500 test images: ~40 s on 2 cores.
            "faster_rcnn": {"train_limit": 512, "val_limit": 256, "test_limit": 500, "batch_size": 16,
                            "serving_batch": 16},
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
        # A quick run's final evaluation must not lengthen `make sweep` by more than a few seconds a model: the
        # robustness check scores 500 test images a corruption (8 corruptions), the ONNX check 2,000 images.
        "loop": {"epochs": 2, "train_limit": 12_000, "val_limit": 2_000, "test_limit": 0, "robustness_images": 500,
                 "onnx_check_images": 2_000},
        "models": {
            # 2,000 canvases x 2 epochs at ~55 canvases/s per core (a ranking, not a result). Batch 8, not 16: twice
            # the steps for the same time; the sweep's retrain config (lr 3.4e-3, anchors 16-24-32-48) went from
            # 44.1% test accuracy / mAP@.5 0.46 to 62.0% / 0.71 (seed 1: 67.1% / 0.72), 89 s of training either way.
            # Each corrupted digit is a canvas through the detector (~55 a second on a core), and its retrain ends
            # the sweep: 100 of them a corruption, and a serving batch of 16 canvases.
            "faster_rcnn": {"train_limit": 4_000, "val_limit": 1_000, "test_limit": 1_000, "batch_size": 8,
                            "robustness_images": 100, "serving_batch": 16},
            # A ViT needs steps more than images: batch 32 gives 750 (test acc ~87%; batch 128: ~51%), ~2 min.
            "vit": {"lr": 1e-3, "batch_size": 32},
            # The big ones see less so that each stays near two minutes on 2 cores (a ranking, not a result):
            # ResNet-18 ~80 img/s, VGG16 (frozen) ~100 img/s, AlexNet (frozen) ~260 img/s.
            # Every model is tested on all 10,000 test images, so that McNemar's test can pair any two of them.
            # ResNet-18 forwards ~230 images a second on a core: its final checks score fewer images.
            "resnet18": {"lr": 1e-3, "epochs": 1, "train_limit": 6_000, "val_limit": 1_000, "robustness_images": 200,
                         "onnx_check_images": 1_000},
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
        # Whether these hold on a card, and how to check them, is in BENCHMARKS.md ("GPU presets").
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
