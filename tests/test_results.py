import numpy as np

from diminish.results import example_results, read_results, write_results


def test_roundtrip_keeps_dims_and_bool_intermediate(tmp_path):
    ds = example_results()
    ds.attrs["config_text"] = 'name = "x"'
    path = write_results(ds, tmp_path / "r" / "results.nc")
    back = read_results(path)
    assert back["intermediate"].dtype == bool
    assert set(back.miou.dims) == {"pretrain", "intermediate", "finetune", "seed"}
    assert back.iou.dims[-1] == "class" and list(back["class"].values) == ["pet", "background", "border"]
    np.testing.assert_array_equal(back.miou.values, ds.miou.values)
    assert back.attrs["config_text"] == 'name = "x"'
    assert not list(tmp_path.glob("r/.tmp-*"))
