import math

import pytest
import torch

from diminish.core.metrics import ConfusionMatrix, scores_from_confusion


def test_hand_computed_scores():
    target = torch.tensor([[0, 0, 1, 1], [2, 2, 1, 0]])
    pred = torch.tensor([[0, 1, 1, 1], [2, 0, 1, 0]])
    cm = ConfusionMatrix(3).update(pred, target)
    assert cm.matrix.tolist() == [[2, 1, 0], [0, 3, 0], [1, 0, 1]]
    s = cm.scores()
    assert s["accuracy"] == pytest.approx(6 / 8)
    # IoU pet = 2/(3+3-2); background = 3/(3+4-3); border = 1/(2+1-1)
    assert s["iou"] == pytest.approx([2 / 4, 3 / 4, 1 / 2])
    assert s["miou"] == pytest.approx((0.5 + 0.75 + 0.5) / 3)


def test_dataset_level_not_mean_of_images():
    cm = ConfusionMatrix(3)
    cm.update(torch.tensor([0, 0, 0, 0]), torch.tensor([0, 0, 0, 0]))  # perfect, pet only
    cm.update(torch.tensor([1, 1]), torch.tensor([0, 1]))
    # pooled: pet TP 4 FN 1 -> 4/5; background TP 1 FP 1 -> 1/2; border absent -> excluded
    s = cm.scores()
    assert s["iou"][:2] == pytest.approx([0.8, 0.5])
    assert math.isnan(s["iou"][2])
    assert s["miou"] == pytest.approx(0.65)


def test_absent_but_predicted_class_counts_as_zero():
    s = scores_from_confusion(torch.tensor([[3, 0, 1], [0, 2, 0], [0, 0, 0]]))
    assert s["iou"] == pytest.approx([0.75, 1.0, 0.0])
    assert s["miou"] == pytest.approx(1.75 / 3)


def test_merge_equals_single_pass():
    g = torch.Generator().manual_seed(0)
    t = torch.randint(0, 3, (10, 16, 16), generator=g)
    p = torch.randint(0, 3, (10, 16, 16), generator=g)
    whole = ConfusionMatrix().update(p, t)
    a = ConfusionMatrix().update(p[:4], t[:4])
    b = ConfusionMatrix().update(p[4:], t[4:])
    assert torch.equal(a.merge(b).matrix, whole.matrix)


def test_rejects_bad_labels():
    with pytest.raises(ValueError, match="outside"):
        ConfusionMatrix(3).update(torch.tensor([3]), torch.tensor([0]))
