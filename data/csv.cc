// ReadCsv (data/readers.h): one example per row, parsed by Debian's libcsv.
#include <csv.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "data/file_bytes.h"
#include "data/labels.h"
#include "data/readers.h"

namespace seedproof {
namespace {

// Takes libcsv's callbacks: each field as it ends, each row as it ends. Stops at
// the first problem, which it keeps with its line and field.
class CsvRows {
 public:
  CsvRows(const CsvOptions& options, const std::string& path)
      : options_(options), path_(path), labels_(options.classes) {}

  static void OnField(void* text, size_t length, void* self) {
    static_cast<CsvRows*>(self)->Field(std::string_view(static_cast<char*>(text), length));
  }
  static void OnRow(int, void* self) { static_cast<CsvRows*>(self)->RowEnd(); }

  void set_line(int64_t line) { line_ = line; }
  bool failed() const { return failed_; }
  // Where the first problem is: line, the 0-based field (-1: the row's end), text.
  int64_t error_line() const { return error_line_; }
  int error_field() const { return error_field_; }
  const std::string& error() const { return error_; }

  absl::StatusOr<ReadSet> Finish() {
    if (rows_ == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(path_, ": no data rows", options_.header ? " after the header" : ""));
    }
    ReadSet set;
    Dataset& data = set.data;
    data.y = std::move(y_);
    data.num_classes = labels_.NumClasses(data.y);
    set.class_names = options_.classes.names;
    const int64_t features = static_cast<int64_t>(values_.size()) / rows_;
    data.example_shape = options_.shape.empty() ? Shape{features} : Shape(options_.shape);
    if (data.width() != features) {
      return absl::InvalidArgumentError(
          absl::StrCat(path_, ": rows have ", features, " feature values but shape ",
                       ShapeToString(data.example_shape), " needs ", data.width()));
    }
    if (all_bytes_) {
      data.storage = Dataset::Storage::kByte;
      data.bytes.assign(values_.begin(), values_.end());
    } else {
      data.x = std::move(values_);
    }
    return set;
  }

 private:
  void Fail(int field, const std::string& message) {
    if (failed_) return;
    failed_ = true;
    error_line_ = field_line_ >= 0 ? field_line_ : line_;
    error_field_ = field;
    error_ = message;
  }

  std::string ColumnName(int field) const {
    if (field < static_cast<int>(names_.size())) {
      return absl::StrCat("column '", names_[field], "' (field ", field + 1, ")");
    }
    return absl::StrCat("field ", field + 1);
  }

  void Field(std::string_view text) {
    if (failed_) return;
    const int field = fields_++;
    if (field == 0) field_line_ = line_;
    if (header_pending()) {
      names_.emplace_back(text);
    } else if (expected_ == 0) {
      first_row_.emplace_back(text);  // which field is the label is known at its end
    } else if (field < expected_) {   // RowEnd reports a row that is too long
      Value(field, text);
    }
  }

  void Value(int field, std::string_view text) {
    if (field == label_) {
      label_text_.assign(text);
      return;
    }
    double v = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (text.empty()) {
      Fail(field, absl::StrCat(ColumnName(field), ": empty, expected a number"));
    } else if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(v)) {
      Fail(field,
           absl::StrCat(ColumnName(field), ": '", std::string(text), "' is not a finite number"));
    } else {
      const auto f = static_cast<float>(v);
      all_bytes_ = all_bytes_ && f >= 0.0f && f <= 255.0f && f == std::floor(f);
      values_.push_back(f);
    }
  }

  void RowEnd() {
    if (failed_) return;
    const int fields = std::exchange(fields_, 0);
    if (header_pending()) {
      header_done_ = true;
      expected_ = fields;
      return ResolveLabel();
    }
    if (expected_ == 0) {
      expected_ = fields;
      ResolveLabel();
      for (int f = 0; f < fields && !failed_; ++f) Value(f, first_row_[f]);
      first_row_.clear();
      if (failed_) return;
    }
    if (fields != expected_) {
      Fail(fields < expected_ ? -1 : expected_,
           absl::StrCat("the row has ", fields, " fields, expected ", expected_,
                        options_.header ? " (as the header)" : " (as the first row)"));
      return;
    }
    auto label = labels_.OfText(label_text_);
    if (!label.ok())
      return Fail(label_, absl::StrCat(ColumnName(label_), ": ", label.status().message()));
    y_.push_back(*label);
    ++rows_;
    field_line_ = -1;
  }

  bool header_pending() const { return options_.header && !header_done_; }

  void ResolveLabel() {
    if (!options_.label_column.empty()) {
      const auto it = std::find(names_.begin(), names_.end(), options_.label_column);
      if (it == names_.end()) {
        return Fail(-2, absl::StrCat("no column '", options_.label_column, "' in the header (",
                                     absl::StrJoin(names_, ", "), ")"));
      }
      label_ = static_cast<int>(it - names_.begin());
    } else {
      label_ = options_.label_index >= 0 ? options_.label_index : expected_ + options_.label_index;
      if (label_ < 0 || label_ >= expected_) {
        return Fail(-2, absl::StrCat("label column ", options_.label_index, " is not one of the ",
                                     expected_, " columns"));
      }
    }
    if (expected_ < 2) Fail(-2, "a row needs a label and at least one feature");
  }

  const CsvOptions& options_;
  const std::string& path_;
  const LabelMap labels_;
  std::vector<std::string> names_;      // the header's
  std::vector<std::string> first_row_;  // without a header, until its end
  bool header_done_ = false;
  int expected_ = 0;  // fields per row; 0 until the header or first row
  int label_ = -1;    // the label's field
  int fields_ = 0;    // in the current row so far
  std::string label_text_;
  std::vector<float> values_;
  std::vector<int32_t> y_;
  bool all_bytes_ = true;
  int64_t rows_ = 0;
  int64_t line_ = 0, field_line_ = -1;
  bool failed_ = false;
  int64_t error_line_ = 0;
  int error_field_ = 0;
  std::string error_;
};

// 1-based byte column where field `field` of the row starting at `row` begins, as
// libcsv splits it (-1: the row's end).
int64_t ColumnOf(std::string_view row, int field) {
  if (field < 0)
    return static_cast<int64_t>(row.find_first_of("\r\n") == std::string_view::npos
                                    ? row.size()
                                    : row.find_first_of("\r\n")) +
           1;
  struct Count {
    int fields = 0;
  } count;
  csv_parser parser;
  csv_init(&parser, CSV_STRICT);
  int64_t column = 1;
  for (size_t i = 0; i < row.size() && count.fields < field; ++i) {
    csv_parse(
        &parser, row.data() + i, 1,
        [](void*, size_t, void* c) { ++static_cast<Count*>(c)->fields; }, nullptr, &count);
    column = static_cast<int64_t>(i) + 2;
  }
  csv_free(&parser);
  return column;
}

}  // namespace

absl::StatusOr<ReadSet> ReadCsv(const std::string& path, const CsvOptions& options) {
  auto bytes = ReadFileMaybeGzip(path);
  if (!bytes.ok()) return bytes.status();
  const std::string_view text(reinterpret_cast<const char*>(bytes->data()), bytes->size());
  csv_parser parser;
  if (csv_init(&parser, CSV_STRICT | CSV_STRICT_FINI) != 0) {
    return absl::ResourceExhaustedError(absl::StrCat(path, ": libcsv"));
  }
  struct Free {
    csv_parser* p;
    ~Free() { csv_free(p); }
  } free_parser{&parser};
  CsvRows rows(options, path);
  // One line at a time, so each field and row is known by its line.
  std::vector<size_t> line_starts;
  size_t at = 0;
  int64_t line = 0;
  while (at < text.size() && !rows.failed()) {
    const size_t end = std::min(text.find('\n', at), text.size() - 1) + 1;
    line_starts.push_back(at);
    rows.set_line(++line);
    if (csv_parse(&parser, text.data() + at, end - at, CsvRows::OnField, CsvRows::OnRow, &rows) !=
        end - at) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", line, ": malformed CSV: ", csv_strerror(csv_error(&parser))));
    }
    at = end;
  }
  if (!rows.failed() && csv_fini(&parser, CsvRows::OnField, CsvRows::OnRow, &rows) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ":", line, ": malformed CSV: ", csv_strerror(csv_error(&parser)),
                     " (a quoted field is not closed)"));
  }
  if (rows.failed()) {
    const int64_t l = rows.error_line();
    if (rows.error_field() == -2)
      return absl::InvalidArgumentError(absl::StrCat(path, ":", l, ": ", rows.error()));
    const size_t start = line_starts[static_cast<size_t>(l - 1)];
    const int64_t column = ColumnOf(text.substr(start), rows.error_field());
    return absl::InvalidArgumentError(absl::StrCat(path, ":", l, ":", column, ": ", rows.error()));
  }
  return rows.Finish();
}

}  // namespace seedproof
