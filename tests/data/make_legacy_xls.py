"""Writes legacy-weld-log.xls, the Excel 97-2003 (BIFF8) fixture of the import tests.

The file is checked in; this script records how it was made (python3 -m pip install xlwt==1.3.0).
A weld log as sites keep them: a title, a header on row 3, six filled-in welds, 1,500 rows
pre-numbered with only a weld number, and a welder list beside the log after two empty columns.
"""
import datetime
import xlwt

book = xlwt.Workbook(encoding="utf-8")
sheet = book.add_sheet("Weld Log")
date = xlwt.easyxf(num_format_str="DD-MMM-YYYY")

sheet.write(0, 0, "UNIT 12 FIELD WELD LOG")
header = ["Weld No", "Drawing", "Weld Type", "Size", "Welder", "Date Welded", "X-Ray %", "NDE Result"]
for col, text in enumerate(header):
    sheet.write(2, col, text)
# The welder list beside the log: two empty columns (I, J), then K and L.
sheet.write(2, 10, "Stencil")
sheet.write(2, 11, "Welder Name")
for row, (stencil, name) in enumerate([("W-01", "Ana Souza"), ("W-02", "Bo Lindqvist"),
                                       ("W-03", "Chen Wei"), ("W-04", "Dario Ferri")], start=3):
    sheet.write(row, 10, stencil)
    sheet.write(row, 11, name)

welds = [
    (1, "P-26B07 01of02", "BW", '2"', "W-01", datetime.date(2025, 3, 4), 0.05, "ACC"),
    (2, "P-26B07 01of02", "BW", '2"', "W-02", datetime.date(2025, 3, 5), 0.05, "REJ"),
    (3, "P-26B07 02of02", "SW", "3/4", "W-01", datetime.date(2025, 3, 5), 0.1, ""),
    ("4A", "P-26B08", "BW", "6", "W-03", datetime.date(2025, 3, 6), 1, "PASS"),
    (5, "P-26B08", "XX", "6", "W-03", None, 0, ""),
    (6, "P-26B08", "FW", "1½", "", None, 0, ""),
]
for row, weld in enumerate(welds, start=3):
    for col, value in enumerate(weld):
        if value is None or value == "":
            continue
        if isinstance(value, datetime.date):
            sheet.write(row, col, value, date)
        else:
            sheet.write(row, col, value)
# Pre-numbered rows waiting to be filled in.
for number in range(7, 1507):
    sheet.write(number + 2, 0, number)

book.save("legacy-weld-log.xls")
