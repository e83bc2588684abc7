import pytest

from pipeline.errors import InputError
from pipeline.inputs import check_single, count_samples, flatten, parse_input_data, split_samples


def test_parse_accepts_ezkl_format_and_bare_list():
    assert parse_input_data({"input_data": [[1, 2.5]]}, "f", [2]) == [[1.0, 2.5]]
    assert parse_input_data({"input_data": [1, 2]}, "f", [2]) == [[1.0, 2.0]]
    assert parse_input_data({"input_data": [[[1, 2], [3, 4]]]}, "f", [4]) == [[1.0, 2.0, 3.0, 4.0]]


@pytest.mark.parametrize("obj, match", [
    ([1, 2], "JSON object with an \"input_data\" field"),
    ({"inputs": [[1]]}, "input_data"),
    ({"input_data": []}, "non-empty list"),
    ({"input_data": [[1], [2]]}, "has 2 lists but the model has 1 inputs"),
    ({"input_data": [[1, "x"]]}, r"input_data\[0\]\[1\]: expected a number"),
    ({"input_data": [[1, True]]}, r"expected a number, got true"),
    ({"input_data": [[1, None]]}, r"expected a number, got null"),
])
def test_parse_rejects_with_location(obj, match):
    with pytest.raises(InputError, match=match):
        parse_input_data(obj, "f", [2])


def test_flatten_rejects_nan_and_inf():
    with pytest.raises(InputError, match=r"\[1\]: nan is not a finite"):
        flatten([1.0, float("nan")], "row 3")
    with pytest.raises(InputError, match="inf is not a finite"):
        flatten([float("inf")], "row 3")


def test_count_and_split_samples():
    flat = [[float(i) for i in range(6)]]
    assert count_samples(flat, [2], [(1, 2)], "f") == 3
    assert split_samples(flat, [2]) == [[[0.0, 1.0]], [[2.0, 3.0]], [[4.0, 5.0]]]
    with pytest.raises(InputError, match=r"input 0 has 5 values; the model expects shape \[1, 2\]"):
        count_samples([[1.0] * 5], [2], [(1, 2)], "f")


def test_check_single_names_expected_shape():
    with pytest.raises(InputError, match=r"input 0 has 7 values; the circuit expects shape \[1, 8\] \(8 values\)"):
        check_single([[0.0] * 7], [8], [(1, 8)], "in.json")


def test_booleans_and_models_without_inputs():
    """ezkl's input.json writes booleans for bool inputs and [[]] for a constant graph with no inputs."""
    assert parse_input_data({"input_data": [[True, False, 1]]}, "f", [3], [True]) == [[1.0, 0.0, 1.0]]
    with pytest.raises(InputError, match="expected a number, got true"):
        parse_input_data({"input_data": [[True]]}, "f", [1], [False])
    assert parse_input_data({"input_data": [[]]}, "f", []) == []
    assert parse_input_data({"input_data": []}, "f", []) == []
    assert count_samples([], [], [], "f") == 1 and split_samples([], []) == [[]]
    with pytest.raises(InputError, match="the model has no inputs"):
        parse_input_data({"input_data": [[1.0]]}, "f", [])
