import pytest
import torch

from diminish.core.model import (
    Classifier,
    Segmenter,
    ViNy,
    ViNyConfig,
    count_parameters,
    load_backbone,
    patchify,
    unpatchify,
)
from diminish.core.simmim import SimMIM


def test_backbone_parameter_count_matches_paper():
    backbone = ViNy()
    assert count_parameters(backbone) == 4_842_880
    # the paper's 4,843,138 = backbone + a 128 -> 2 linear head (vit-pytorch default)
    assert count_parameters(Classifier(ViNy(), num_classes=2)) == 4_843_138


@pytest.mark.parametrize("cfg", [
    ViNyConfig(),
    ViNyConfig(depth=2, dim=64, heads=4, dim_head=16, mlp_dim=128),
    ViNyConfig(image_size=96, patch_size=8, channels=1, dim=48, depth=3, heads=3, dim_head=8, mlp_dim=80),
])
def test_closed_form_parameter_count_matches_the_module(cfg):
    """The report counts parameters from the config alone (no torch); it must equal the module's."""
    with torch.device("meta"):
        backbone = ViNy(cfg)
    assert cfg.backbone_parameters == count_parameters(backbone)


def test_config_derived_values():
    cfg = ViNyConfig()
    assert (cfg.grid, cfg.num_patches, cfg.patch_dim) == (8, 64, 768)
    with pytest.raises(ValueError, match="multiple"):
        ViNyConfig(image_size=100)


def test_patchify_roundtrip_and_layout():
    x = torch.randn(2, 3, 128, 128)
    p = patchify(x, 16)
    assert p.shape == (2, 64, 768)
    assert torch.equal(unpatchify(p, 16, 3), x)
    # patch 1 is the second patch of the first row; its first value is pixel (0, 16), channel 0
    assert p[0, 1, 0] == x[0, 0, 0, 16]
    assert p[0, 8, 3 * 16] == x[0, 0, 17, 0]  # patch 8 = second row, first column; row 1 inside


def test_token_interface_shapes():
    vit = ViNy()
    x = torch.randn(2, 3, 128, 128)
    tokens = vit.embed_patches(x)
    assert tokens.shape == (2, 64, 128)
    assert vit.encode(tokens).shape == (2, 65, 128)
    assert vit.encode(tokens, with_cls=False).shape == (2, 64, 128)
    assert Classifier(vit, 6)(x).shape == (2, 6)
    assert Segmenter(vit)(x).shape == (2, 3, 128, 128)


def test_segmenter_head_is_local_to_each_patch():
    # the logits of a patch come from that patch's token only: perturbing the head's input for
    # one token changes exactly one 16x16 block of the map
    seg = Segmenter(ViNy()).eval()
    tokens = torch.randn(1, 64, 128)
    a = unpatchify(seg.head(tokens), 16, 3)
    tokens[0, 9] += 1.0
    b = unpatchify(seg.head(tokens), 16, 3)
    changed = (a != b).any(1)[0]
    assert changed.sum() == 256 and changed[16:32, 16:32].all()


def test_transfer_asserts_exactly_the_head_is_new():
    pre = SimMIM(ViNy())
    cls = Classifier(ViNy(), 6)
    dropped = load_backbone(cls, pre.state_dict())
    assert dropped == {"mask_token", "head.weight", "head.bias"}
    assert torch.equal(cls.backbone.pos_embedding, pre.backbone.pos_embedding)
    seg = Segmenter(ViNy())
    assert load_backbone(seg, cls.state_dict()) == {"head.weight", "head.bias"}
    assert torch.equal(seg.backbone.blocks[3].ff.net[1].weight, pre.backbone.blocks[3].ff.net[1].weight)
    # a state dict missing a backbone key is refused, naming it
    sd = cls.state_dict()
    del sd["backbone.norm.weight"]
    with pytest.raises(KeyError, match="backbone.norm.weight"):
        load_backbone(Segmenter(ViNy()), sd)
