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


def test_file_describes_itself_to_plain_xarray(tmp_path):
    import xarray as xr

    from diminish.results import SCHEMA

    path = write_results(example_results(), tmp_path / "results.nc")
    with xr.open_dataset(path, decode_timedelta=True) as raw:
        assert raw.attrs["Conventions"] == "CF-1.10"
        for name in raw.variables:  # data variables and coordinates alike
            attrs = raw[name].attrs
            assert attrs.get("long_name") and attrs.get("units") and attrs.get("description"), name
        assert raw.miou.attrs["units"] == "percent" and raw.pretrain.attrs["units"] == "images"
        assert raw.train_seconds.dtype.kind == "f"  # units "s": not decoded into timedelta64
        flags = dict(zip(raw.intermediate.attrs["flag_values"], raw.intermediate.attrs["flag_meanings"].split()))
        assert flags[1].startswith("intel") and flags[0].startswith("no_")
        on = raw.miou.sel(intermediate=1, pretrain=45_000, finetune=250, seed=0)
        off = raw.miou.sel(intermediate=0, pretrain=45_000, finetune=250, seed=0)
        ds = example_results()
        assert float(on) == float(ds.miou.sel(intermediate=True, pretrain=45_000, finetune=250, seed=0))
        assert float(off) != float(on)
    back = read_results(path)
    assert set(SCHEMA) >= set(back.variables) and "Conventions" not in back.attrs


def test_a_variable_without_schema_entry_is_refused(tmp_path):
    import pytest

    ds = example_results()
    ds["mystery"] = ds.miou * 2
    with pytest.raises(ValueError, match="SCHEMA has no entry for \\['mystery'\\]"):
        write_results(ds, tmp_path / "results.nc")
    assert not (tmp_path / "results.nc").exists()
