"""Networks, one file per family: the digits' LeNet and D_feat (lenet), the release's DTN (dtn), translators and
image discriminator (digit_gan); the segmenters (segmenter: what they share; fcn8s, drn, small_fcn) and
CycleGAN's G and D (cyclegan); the layers they share (layers). The segmenters' pretrained backbones: pretrained
(Keras' cache, the error of a missing file), vgg16_weights (FCN8s), drn_imagenet and torch_checkpoint
(DRN-C-26, from PyTorch)."""
