"""The model registry: every model at 32 and 64 px, normalisation inside, local weights only."""

import pytest
import torch

from robust.errors import ParamError, RobustError
from robust.models import available, create


@pytest.mark.parametrize("name", [n for n in available(classifiers_only=True) if n != "alexnet"])
@pytest.mark.parametrize("size", [32, 64])
def test_every_model_gives_logits_for_small_inputs(name, size):
    model = create(name, 7, image_size=size).eval()
    with torch.no_grad():
        assert model(torch.rand(2, 3, size, size)).shape == (2, 7)


def test_torchvision_alexnet_needs_64_px_and_works_there():
    with pytest.raises(ParamError, match="alexnet_small"):
        create("alexnet", 10, image_size=32)
    with torch.no_grad():
        assert create("alexnet", 10, image_size=64).eval()(torch.rand(1, 3, 64, 64)).shape == (1, 10)


def test_models_normalise_inside_their_forward():
    model = create("deepcorrect_net", 5, width=0.25).eval()
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        manual = model.net((x - model.mean) / model.std)
        assert torch.allclose(model(x), manual)


def test_deepcorrect_net_has_the_seeds_parameter_count():
    model = create("deepcorrect_net", 100)
    assert round(sum(p.numel() for p in model.parameters()) / 1e6, 2) == 1.39


def test_local_weights_load_and_mismatches_are_reported(tmp_path):
    source = create("resnet18", 10)
    torch.save(source.net.state_dict(), tmp_path / "r18.pt")
    same = create("resnet18", 10, pretrained=str(tmp_path / "r18.pt")).eval()
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(same(x), source.eval()(x))
    other_head = create("resnet18", 4, pretrained=str(tmp_path / "r18.pt"))
    assert other_head.skipped_weights == ["fc.bias", "fc.weight"]


def test_missing_weights_never_download(tmp_path, monkeypatch):
    with pytest.raises(RobustError, match="not found"):
        create("resnet18", 10, pretrained=str(tmp_path / "missing.pt"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(RobustError, match="resnet18-f37072fd.pth.*never downloads"):
        create("resnet18", 10, pretrained="torchvision")
    with pytest.raises(ParamError, match="Unknown model"):
        create("resnet19", 10)


def test_cpu_sized_resnet_and_densenet_keep_their_family_and_full_size_is_torchvisions():
    from torchvision import models as tv

    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    # width 1 / the default options: torchvision's own networks, parameter for parameter
    assert count(create("resnet18", 1000, image_size=224).net) == count(tv.resnet18()) == 11_689_512
    assert count(create("resnet50", 1000, image_size=224).net) == count(tv.resnet50())
    assert count(create("densenet121", 1000, image_size=224).net) == count(tv.densenet121())
    small = create("resnet18", 10, image_size=32, width=0.125).net
    assert [small.layer1[0].conv1.out_channels, small.layer2[0].conv1.out_channels, small.layer3[0].conv1.out_channels,
            small.layer4[0].conv1.out_channels] == [8, 16, 32, 64] and [len(small.layer1), len(small.layer4)] == [2, 2]
    assert count(small) == 176_402 and small.conv1.kernel_size == (3, 3)
    dense = create("densenet121", 10, image_size=32, growth_rate=8, block_config=[1, 2, 2, 2], init_features=16).net
    assert count(dense) == 22_864
    for net in (small, dense):
        assert net(torch.rand(2, 3, 32, 32)).shape == (2, 10)
    with pytest.raises(ParamError, match="width"):
        create("resnet18", 10, width=0)
    with pytest.raises(ParamError, match="block_config"):
        create("densenet121", 10, block_config=[2, 0])


def test_residual_processor_and_transformer_start_as_their_no_processing_baseline():
    x = torch.rand(2, 3, 16, 16)
    assert torch.equal(create("srresnet", 2, scale=1, width=4, blocks=1, residual=True)(x), x)  # identity
    up = create("srresnet", 2, scale=2, width=4, blocks=1, residual=True)(x)
    assert torch.allclose(up, torch.nn.functional.interpolate(x, scale_factor=2, mode="bicubic", align_corners=False).clamp(0, 1))
    assert not torch.equal(create("srresnet", 2, scale=1, width=4, blocks=1)(x), x)  # the seed's P starts elsewhere
    assert torch.equal(create("resnet_generator", 2, width=4, blocks=1, residual=True)(x), x)  # T too starts as the identity


def test_cpu_sized_squeezenet_and_efficientnet_keep_their_family_and_full_size_is_torchvisions():
    from torchvision import models as tv

    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(create("squeezenet1_1", 1000, image_size=224).net) == count(tv.squeezenet1_1()) == 1_235_496
    for variant in ("b0", "b1", "b4"):  # the variants' own compound scaling, untouched at width = depth = 1
        assert count(create(f"efficientnet_{variant}", 1000, image_size=224).net) == count(getattr(tv, f"efficientnet_{variant}")())
    squeeze = create("squeezenet1_1", 10, image_size=32, width=0.25).net
    fires = [m for m in squeeze.features if isinstance(m, tv.squeezenet.Fire)]
    # the same 8 fire modules and 3 pools, a quarter of the channels (squeeze 16..64 -> 4..16, expand 64..256 -> 16..64)
    assert [(f.squeeze.out_channels, f.expand1x1.out_channels) for f in fires] == [(4, 16), (4, 16), (8, 32), (8, 32), (12, 48), (12, 48), (16, 64), (16, 64)]
    assert sum(isinstance(m, torch.nn.MaxPool2d) for m in squeeze.features) == 3 and count(squeeze) == 47_322
    efficient = create("efficientnet_b0", 10, image_size=32, width=0.25, depth=0.25).net
    stages = list(efficient.features[1:-1])
    # B0's 7 MBConv stages (1, 2, 2, 3, 3, 4, 1 blocks) at ceil(blocks / 4), channels x 1/4 rounded up to multiples of 8
    assert [len(s) for s in stages] == [1] * 7
    assert [s[-1].block[-1][0].out_channels for s in stages] == [8, 8, 16, 24, 32, 48, 80] and count(efficient) == 126_822
    deeper = create("efficientnet_b4", 10, image_size=32, width=0.25, depth=0.25).net  # B4's own x1.4 / x1.8 on top
    assert [len(s) for s in deeper.features[1:-1]] == [1, 1, 1, 2, 2, 2, 1]
    for net in (squeeze, efficient, deeper):
        assert net.eval()(torch.rand(2, 3, 32, 32)).shape == (2, 10)
    with pytest.raises(ParamError, match="width"):
        create("squeezenet1_1", 10, width=-1)
    with pytest.raises(ParamError, match="depth"):
        create("efficientnet_b0", 10, depth=0)


def test_input_size_upsamples_every_input_and_builds_the_network_for_that_size():
    seen = []
    model = create("resnet18", 5, image_size=32, input_size=64, width=0.125).eval()
    model.net.conv1.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0].shape[-1]))
    with torch.no_grad():
        assert model(torch.rand(2, 3, 32, 32)).shape == (2, 5)
    assert seen == [64] and model.net.conv1.kernel_size == (3, 3)  # 64 px: still the small-input stem
    big = create("resnet18", 5, image_size=64, input_size=224, width=0.125)
    assert big.net.conv1.kernel_size == (7, 7) and big.input_size == 224  # built for 224: torchvision's stem, so ImageNet weights fit
    assert create("resnet18", 5, image_size=32, input_size=32).input_size is None  # the stored size: nothing to resize
    with pytest.raises(ParamError, match="input_size"):
        create("resnet18", 5, input_size=0)
