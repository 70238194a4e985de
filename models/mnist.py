"""What every architecture here is fed: MNIST's geometry, class count and normalisation, stated once.

The mean and standard deviation are those of MNIST's 60,000 training images scaled to [0, 1] (0.1307 and
0.3081, as in PyTorch's MNIST example, pytorch/examples mnist/main.py).
"""

SIDE = 28  # pixels, height = width
CHANNELS = 1
NUM_CLASSES = 10
MEAN, STD = 0.1307, 0.3081
