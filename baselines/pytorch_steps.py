"""The digit train steps of cycada-tf written in PyTorch, to time the same arithmetic in both frameworks on
one machine (the baselines of tools/benchmark.py's numbers; see README.md, Speed).

    python -m venv /tmp/torch && /tmp/torch/bin/pip install torch==2.13.0+cpu numpy
    /tmp/torch/bin/python baselines/pytorch_steps.py --stage=pixel --precision=bfloat16

Not part of the package: PyTorch is no dependency of cycada-tf, so nothing here is imported, built by BUILD
or run by the tests. The networks and the step follow cycada_tf's defaults (DigitsConfig): 32x32x3 images;
the Figure 7 generator at width 32 with reflection padding, instance norm and, in G_S->T, an 8-dimensional
style code modulating the two upsampling layers' norms; the 6-convolution image discriminator at width 32
with the minibatch-std channel; the frozen LeNet f_S; Eq. 2 with the log loss, Eq. 3 (L1), Eq. 4's source
term only (semantic_t2s_weight 0); a 50-image history per discriminator; Adam(2e-4, 0.5). The source step is
Eq. 1 on LeNet with Adam(1e-4). --precision=bfloat16 runs the step under torch.autocast, the counterpart of
mixed_bfloat16. --count_flops prints FlopCounterMode's count of one step, which tools/flops.py matches.
"""

import argparse
import time

import torch
import torch.nn.functional as F
from torch import nn


def instance_norm(channels, affine=True):
    return nn.InstanceNorm2d(channels, affine=affine, eps=1e-5)


class ResidualBlock(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.body = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), instance_norm(channels),
                                  nn.ReLU(), nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3),
                                  instance_norm(channels))

    def forward(self, x):
        return x + self.body(x)


class StyleNorm(nn.Module):
    """Instance norm whose per-channel scale and shift come from the style code z."""

    def __init__(self, channels, code):
        super().__init__()
        self.norm = instance_norm(channels, affine=False)
        self.gamma, self.beta = nn.Linear(code, channels), nn.Linear(code, channels)

    def forward(self, x, z):
        return self.norm(x) * (1 + self.gamma(z)[:, :, None, None]) + self.beta(z)[:, :, None, None]


class Generator(nn.Module):
    def __init__(self, width=32, channels=3, code=0):
        super().__init__()
        self.code = code
        self.down = nn.Sequential(
            nn.ReflectionPad2d(3), nn.Conv2d(channels, width, 7), instance_norm(width), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, 2, 1), instance_norm(2 * width), nn.ReLU(),
            nn.Conv2d(2 * width, 4 * width, 3, 2, 1), instance_norm(4 * width), nn.ReLU(),
            ResidualBlock(4 * width), ResidualBlock(4 * width))
        self.up1 = nn.ConvTranspose2d(4 * width, 2 * width, 3, 2, 1, output_padding=1)
        self.up2 = nn.ConvTranspose2d(2 * width, width, 3, 2, 1, output_padding=1)
        self.norm1 = StyleNorm(2 * width, code) if code else instance_norm(2 * width)
        self.norm2 = StyleNorm(width, code) if code else instance_norm(width)
        self.out = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(width, channels, 7))

    def forward(self, x):
        h = self.down(x)
        if self.code:
            z = torch.randn(x.shape[0], self.code)
            h = F.relu(self.norm2(self.up2(F.relu(self.norm1(self.up1(h), z))), z))
        else:
            h = F.relu(self.norm2(self.up2(F.relu(self.norm1(self.up1(h))))))
        return torch.tanh(self.out(h).float())


class Discriminator(nn.Module):
    def __init__(self, width=32, channels=3):
        super().__init__()
        layers = []
        for cin, cout, stride in ((channels, width, 1), (width, width, 2), (width, 2 * width, 1),
                                  (2 * width, 2 * width, 2), (2 * width, 4 * width, 1)):
            layers += [nn.Conv2d(cin, cout, 3, stride, 1), nn.LeakyReLU(0.2)]
        self.body = nn.Sequential(*layers)
        self.last = nn.Conv2d(4 * width + 1, 1, 3, 1, 1)

    def forward(self, x):
        h = self.body(x)
        std = torch.sqrt(h.float().var(0, unbiased=False) + 1e-8).mean().to(h.dtype)
        return self.last(torch.cat([h, std.expand(h.shape[0], 1, h.shape[2], h.shape[3])], 1)).float()


class LeNet(nn.Module):
    def __init__(self, channels=3, classes=10):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, 20, 5), nn.MaxPool2d(2), nn.ReLU(), nn.Conv2d(20, 50, 5), nn.Dropout2d(0.5),
            nn.MaxPool2d(2), nn.ReLU(), nn.Flatten(), nn.Linear(50 * 5 * 5, 500), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(500, classes))

    def forward(self, x):
        return self.body(x).float()


class ImagePool:
    """CycleGAN's history: once full, each image is swapped with probability 1/2 for a stored one."""

    def __init__(self, size=50):
        self.size, self.images = size, []

    def query(self, fake):
        out = []
        for image in fake.detach():
            if len(self.images) < self.size:
                self.images.append(image)
                out.append(image)
            elif torch.rand(1).item() < 0.5:
                slot = torch.randint(0, self.size, (1,)).item()
                out.append(self.images[slot].clone())
                self.images[slot] = image
            else:
                out.append(image)
        return torch.stack(out)


def bce(logits, target):
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def source_step(bf16):
    net = LeNet()
    optimizer = torch.optim.Adam(net.parameters(), 1e-4)

    def step(x, y):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(net(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.item()
    return step


def pixel_step(bf16):
    g_st, g_ts, d_s, d_t, f_s = Generator(code=8), Generator(), Discriminator(), Discriminator(), LeNet().eval()
    f_s.requires_grad_(False)
    discriminators = list(d_s.parameters()) + list(d_t.parameters())
    g_opt = torch.optim.Adam(list(g_st.parameters()) + list(g_ts.parameters()), 2e-4, betas=(0.5, 0.999))
    d_opt = torch.optim.Adam(discriminators, 2e-4, betas=(0.5, 0.999))
    pool_s, pool_t = ImagePool(), ImagePool()

    def step(x_s, x_t):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            fake_t, fake_s = g_st(x_s), g_ts(x_t)
            rec_s, rec_t = g_ts(fake_t), g_st(fake_s)
            for p in discriminators:
                p.requires_grad_(False)
            g_loss = (bce(d_t(fake_t), 1.0) + bce(d_s(fake_s), 1.0)
                      + (rec_s - x_s).abs().mean() + (rec_t - x_t).abs().mean()
                      + F.cross_entropy(f_s(fake_t), f_s(x_s).argmax(1)))
        g_opt.zero_grad(set_to_none=True)
        g_loss.backward()
        g_opt.step()
        for p in discriminators:
            p.requires_grad_(True)
        pooled_t, pooled_s = pool_t.query(fake_t), pool_s.query(fake_s)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            d_loss = (bce(d_t(x_t), 1.0) + bce(d_t(pooled_t), 0.0) + bce(d_s(x_s), 1.0) + bce(d_s(pooled_s), 0.0))
        d_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        d_opt.step()
        return g_loss.item() + d_loss.item()
    return step


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", choices=("source", "pixel"), default="pixel")
    parser.add_argument("--precision", choices=("float32", "bfloat16"), default="float32")
    parser.add_argument("--batch_size", type=int, default=100)
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--warmup_steps", type=int, default=3)
    parser.add_argument("--count_flops", action="store_true")
    args = parser.parse_args()
    torch.manual_seed(0)
    step = (source_step if args.stage == "source" else pixel_step)(args.precision == "bfloat16")
    x_s = torch.rand(args.batch_size, 3, 32, 32) * 2 - 1
    second = torch.randint(0, 10, (args.batch_size,)) if args.stage == "source" else torch.rand_like(x_s) * 2 - 1
    for _ in range(args.warmup_steps):
        step(x_s, second)
    if args.count_flops:
        from torch.utils.flop_counter import FlopCounterMode
        with FlopCounterMode(display=False) as counter:
            step(x_s, second)
        print(f"{args.stage} step: {counter.get_total_flops()} floating-point operations")
    start = time.perf_counter()
    for _ in range(args.steps):
        step(x_s, second)
    seconds = (time.perf_counter() - start) / args.steps
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.stage} step, batch "
          f"{args.batch_size}, {args.precision}: {seconds * 1000:.1f} ms per step, "
          f"{args.batch_size / seconds:.1f} images per second")


if __name__ == "__main__":
    main()
