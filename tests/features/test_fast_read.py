"""The fast paths of reading a csv folder read exactly what the general ones do (issue 17: validation speed).

Plain csv files are split by Arrow's reader, anything else by pandas'; plain decimals are parsed by Arrow, anything
else by ``pd.to_numeric``. Each pair must agree cell for cell and bit for bit.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from features.formats import Format, FormatError, _read_plain_csv, _to_float, read_table

TEXTS = ["a,b\n1,2\n", "a,b\n1,2", "a,b\r\n1,2\r\n", "a,b\n,\n", "a,b\n1 , 2 \n", "å,ö\nÅ,€\n", "a,,b\n1,,2\n",
         "a|b\n1|\n", "a,b\n'x',y\n", "a\n1\n2\n",
         # not plain: pandas reads them
         "a,b\n1,2\n\n3,4\n", "a,b\n 1,2\n", 'a,b\n"1,5",2\n', "a,b\n1\r2,3\n", "a,b\n1,2\n   \n", "a,b\n1\n",
         "a,b\r\n\r\n1,2\r\n", 'a,b\n"x\ny",2\n']


def _pandas(text: str, sep: str) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(text), sep=sep, header=None, dtype=str, keep_default_na=False, na_filter=False,
                       skip_blank_lines=True, engine="c")


@pytest.mark.parametrize("text", TEXTS)
def test_a_csv_file_reads_as_pandas_reads_it(tmp_path, text):
    sep = "|" if "|" in text else ","
    fast = _read_plain_csv(text, sep)
    if fast is not None:
        pd.testing.assert_frame_equal(fast, _pandas(text, sep), check_exact=True)
    path = tmp_path / "customers.csv"
    path.write_bytes(text.encode("utf-8"))
    frame, _ = read_table(path, Format(delimiter=sep))
    expected = _pandas(text, sep).iloc[1:]
    assert frame.to_numpy(dtype=object, na_value=None).tolist() == expected.to_numpy(dtype=object,
                                                                                       na_value=None).tolist()
    assert all(str(dtype) == "str" for dtype in frame.dtypes)


def test_quoted_and_blank_line_files_are_not_read_by_the_plain_reader():
    for text in ('a,b\n"1,5",2\n', "a,b\n1,2\n\n3,4\n", "a,b\n 1,2\n", "a,b\n1\r2,3\n"):
        assert _read_plain_csv(text, ",") is None


def test_a_ragged_row_is_still_an_error_naming_the_delimiter(tmp_path):
    path = tmp_path / "invoices.csv"
    path.write_text("a,b\n1,2,3\n")
    with pytest.raises(FormatError, match="cannot be read with delimiter ','"):
        read_table(path, Format())


def test_numbers_are_the_floats_pd_to_numeric_gives():
    rng = np.random.default_rng(7)
    digits = rng.integers(1, 16, 20_000)
    plain = [("-" if i % 3 == 0 else "") + "".join(rng.choice(list("0123456789"), d))[: d - i % d]
             + "." + "".join(rng.choice(list("0123456789"), i % d)) for i, d in enumerate(digits)]
    odd = ["1e5", "-2.5E-3", "inf", "nan", "abc", "+", ".", "-.5", "5.", "12345678901234567.25",
           "0.30719375626634858", "+233.30479229709754", None]
    text = pd.Series(plain + odd, dtype="string")
    got = _to_float(text).to_numpy()
    want = np.asarray(pd.to_numeric(text.astype(object), errors="coerce"), dtype="float64")
    assert np.array_equal(got, want, equal_nan=True)
    assert np.array_equal(np.signbit(got), np.signbit(want))


def test_files_and_columns_on_threads_come_back_in_order_with_their_errors(monkeypatch):
    # features.load._each: the work of each item on a thread a core, handed back in the items' order (the later
    # items here finish first), an error in its item's place; one core does them one after the other.
    import time

    from features.load import _each

    def work(i: int) -> int:
        time.sleep(0.02 * (4 - i))
        if i == 2:
            raise ValueError("two")
        return i * 10

    for cores in (4, 1):
        monkeypatch.setattr("features.parallel.count", lambda n=cores: n)
        done = _each(work, range(4))
        assert [r for r, _ in done] == [0, 10, None, 30]
        assert [type(e).__name__ if e else None for _, e in done] == [None, None, "ValueError", None]
