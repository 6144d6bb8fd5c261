"""Sample sheets: CSV or TSV by extension, blank lines skipped, every problem at file:row[:column]."""
import gzip

import pytest

from s3rules.errors import SampleSheetError, StorageError
from s3rules.language.samples import SHELL_NAMES, load_sheet, parse_sheet


def write(tmp_path, name, data) -> str:
    path = tmp_path / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return str(path)


def sheet_error(text: str, name: str = "samples.csv", delimiter: str = ",") -> SampleSheetError:
    with pytest.raises(SampleSheetError) as info:
        parse_sheet(text, name, delimiter)
    return info.value


def test_columns_rows_and_the_line_of_each_row(tmp_path):
    sheet = load_sheet(write(tmp_path, "samples.csv", "sample,group\nA,g1\nB,g2\n"))
    assert sheet.columns == ("sample", "group") and sheet.key == "sample"
    assert sheet.rows == [("A", "g1"), ("B", "g2")] and sheet.lines == [2, 3] and len(sheet) == 2
    assert sheet.row_of["B"] == ("B", "g2") and sheet.column_index == {"sample": 0, "group": 1}


# (test_tsv_sheet_by_extension moved here from test_loader.py, as the "s.tsv" case)
@pytest.mark.parametrize("name, delimiter", [
    ("s.csv", ","), ("s.tsv", "\t"), ("s.tab", "\t"), ("s.txt", "\t"), ("S.TSV", "\t"), ("sheet", ","),
    ("s.tsv.gz", "\t"), ("s.csv.gz", ","),
])
def test_the_extension_picks_the_delimiter(tmp_path, name, delimiter):
    other = "\t" if delimiter == "," else ","     # the other delimiter is plain text in a value
    data = f"sample{delimiter}group\nA{delimiter}g{other}1\n".encode()
    if name.endswith(".gz"):
        data = gzip.compress(data)
    assert load_sheet(write(tmp_path, name, data)).rows == [("A", f"g{other}1")]


def test_a_byte_order_mark_is_not_part_of_the_first_column(tmp_path):
    sheet = load_sheet(write(tmp_path, "s.csv", b"\xef\xbb\xbfsample,group\nA,g1\n"))
    assert sheet.columns == ("sample", "group") and sheet.key == "sample"


@pytest.mark.parametrize("text, lines", [
    ("\n\nsample,group\n\nA,g1\n\n\nB,g2\n\n", [5, 8]),
    ("sample,group\r\nA,g1\r\n\r\nB,g2\r\n", [2, 4]),
    ("sample,group\n  \nA,g1\n\nB,g2\n", [3, 5]),          # a line of spaces is blank too
    ("sample\n\nA\n   \nB\n", [3, 5]),                     # one column: read the careful way
])
def test_blank_lines_are_skipped_and_rows_keep_their_file_lines(text, lines):
    sheet = parse_sheet(text, "s.csv")
    assert [row[0] for row in sheet.rows] == ["A", "B"] and sheet.lines == lines


def test_rows_where_finds_rows_by_column_values():
    sheet = parse_sheet("sample,group,lane\nA,g1,1\nB,g2,1\nC,g1,2\n", "s.csv")
    assert sheet.rows_where(("group",), ("g1",)) == [0, 2]
    assert sheet.rows_where(("group", "lane"), ("g1", "2")) == [2]
    assert sheet.rows_where(("group",), ("g9",)) == []


def test_sheet_error_names_the_file_line_of_a_row():
    sheet = parse_sheet("sample,group\n\nA,g1\nB,g2\n", "samples.csv")
    err = sheet.error("bad value", 1, "group")
    assert str(err) == "samples.csv:4:group: bad value" and (err.row, err.column) == (4, "group")
    assert str(sheet.error("bad sheet")) == "samples.csv: bad sheet"


# Moved here from test_loader.py: errors of the sheet itself, whatever the Batchfile.
@pytest.mark.parametrize("sheet, row, column, fragment", [
    ("sample,group\nA,g1\nA,g2\n", 3, "sample", "duplicate key 'A': it is already used on line 2"),
    ("sample,group\nA,g1\nB\n", 3, None, "this row has 1 fields but the header has 2"),
    ("sample,my-group\nA,g1\n", 1, "my-group", "not a valid wildcard name"),
    ("sample,group,group\nA,g1,g2\n", 1, "group", "appears twice"),
    ("sample,group\n,g1\n", 2, "sample", "the key (first column) is empty"),
    ("sample,group\n", 1, None, "header but no rows"),
    ("", 1, None, "the sample sheet is empty"),
])
def test_sample_sheet_errors_name_row_and_column(tmp_path, sheet, row, column, fragment):
    with pytest.raises(SampleSheetError) as info:
        load_sheet(write(tmp_path, "samples.csv", sheet), "samples.csv")
    err = info.value
    assert fragment in str(err)
    assert (err.row, err.column) == (row, column)
    assert str(err).startswith(f"samples.csv:{row}")
    where = f":{row}:{column}: " if column else f":{row}: "
    assert where in str(err)


@pytest.mark.parametrize("text, message", [
    ("\n\n", "samples.csv:1: the sample sheet is empty: it needs a header row and one row per sample"),
    ("\nsample,,group\nA,1,2\n", "samples.csv:2: column 2 has no name in the header"),
    ("sample,my-group\nA,g1\n",
     "samples.csv:1:my-group: column name 'my-group' is not a valid wildcard name (letters, digits, _)"),
    ("sample,group,group\nA,g1,g2\n", "samples.csv:1:group: column 'group' appears twice in the header"),
    ("sample,group\nA,g1\n\nB\n", "samples.csv:4: this row has 1 fields but the header has 2"),
    ("sample,label\ns0,a\x00b\n", "samples.csv:2:label: this value contains a NUL byte, which no command can receive"),
    ("sample,group\n,g1\n", "samples.csv:2:sample: the key (first column) is empty"),
    ("sample,group\nA,g1\n\nA,g2\n", "samples.csv:4:sample: duplicate key 'A': it is already used on line 2"),
    ("sample,group\nA,\"g\"x\n", "samples.csv:2: malformed CSV: ',' expected after '\"'"),
    ("sample,group\nA,\"g1\n", "samples.csv:2: malformed CSV: unexpected end of data"),
    ("sample,group\n   \n", "samples.csv:1: the sample sheet has a header but no rows"),
])
def test_each_error_is_located(text, message):
    assert str(sheet_error(text)) == message


def test_a_tsv_error_says_tsv():
    err = sheet_error("sample\tgroup\nA\t\"g\"x\n", "s.tsv", "\t")
    assert str(err) == "s.tsv:2: malformed TSV: '\t' expected after '\"'"


@pytest.mark.parametrize("name", SHELL_NAMES)
def test_a_column_may_not_take_a_name_the_shell_command_gives(name):
    err = sheet_error(f"sample,{name}\nA,x\n")
    assert str(err) == (f"samples.csv:1:{name}: column name '{name}' is reserved: in a shell command "
                        f"{{{name}}} means the job's own value; rename the column")


def test_not_utf8_names_the_line(tmp_path):
    with pytest.raises(SampleSheetError) as info:
        load_sheet(write(tmp_path, "s.csv", b"sample,group\nA,g1\nB,\xff\n"), "s.csv")
    assert str(info.value) == "s.csv:3: not valid UTF-8 text"


# Moved here from test_loader.py (it went through a Batchfile naming the sheet).
def test_missing_sheet_is_a_sheet_error(tmp_path):
    with pytest.raises(SampleSheetError) as info:
        load_sheet(str(tmp_path / "nope.csv"), "nope.csv")
    assert str(info.value) == "nope.csv: the sample sheet does not exist"
    assert (info.value.row, info.value.column) == (None, None)


def test_a_directory_is_not_a_sheet(tmp_path):
    (tmp_path / "d.csv").mkdir()
    with pytest.raises(SampleSheetError) as info:
        load_sheet(str(tmp_path / "d.csv"), "d.csv")
    assert str(info.value) == "d.csv: this is a directory, not a sample sheet"


def test_an_unreadable_path_is_a_storage_error(tmp_path):
    write(tmp_path, "file", "x")
    with pytest.raises(StorageError) as info:
        load_sheet(str(tmp_path / "file" / "s.csv"), "file/s.csv")
    assert str(info.value).startswith("file/s.csv: cannot read the sample sheet: ")


def test_without_a_display_name_messages_use_the_path(tmp_path):
    path = str(tmp_path / "nope.csv")
    with pytest.raises(SampleSheetError) as info:
        load_sheet(path)
    assert str(info.value) == f"{path}: the sample sheet does not exist"
