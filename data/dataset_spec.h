// What data a trial reads, as plain values: the dataset (DatasetSpec: where it is,
// how it is read, its content hash, its declared preprocessing) and the task view of
// it (TaskSpec). The sweep spec (experiments/sweep.h) holds them; data/load.h reads
// a dataset, data/task_data.h builds a task's splits from it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace seedproof {

enum class DatasetFormat { kIdx, kImages, kNpy, kNpz, kCsv };
// "idx", "images", "npy", "npz", "csv": the words of specs and trial specs.
const char* DatasetFormatName(DatasetFormat format);
std::optional<DatasetFormat> DatasetFormatNamed(std::string_view name);

struct DatasetSpec {
  std::string name = "fashion-mnist";  // the spec's name for it
  DatasetFormat format = DatasetFormat::kIdx;
  // Where it is read (data/load.h says what each format expects there); empty:
  // Debian's Fashion-MNIST. A location only: the data is named by sha256.
  std::string path;
  // SHA-256 of the decoded content (data/dataset_blob.h), set when the study is
  // loaded; a copy that hashes otherwise is refused.
  std::string sha256;
  // The examples' shape after the declared channel conversion, (H, W, C) or (F),
  // also set when the study is loaded (a task's declared resize starts from it).
  std::vector<int64_t> example_shape;
  // The coordinator keeps the decoded data and sends it to workers by hash; else
  // workers read `path` themselves (a shared filesystem) and verify the hash.
  bool ship = false;

  // Classes as declared: names (their order gives the labels) or a count; both
  // empty: what the files hold (image folders' names, or labels 0..max).
  std::vector<std::string> class_names;
  int classes = 0;
  // One set of examples rather than train and test: this share of each class,
  // drawn with split_seed, is the test split (0: the files have both).
  double test_split = 0.0;
  uint64_t split_seed = 0;
  // npy, npz: arrays are (N, C, H, W) (PyTorch) rather than (N, H, W, C).
  bool channels_first = false;
  // images: every image is resized to (height, width) as it is decoded (needed
  // when their sizes differ); unset: all must have one size.
  std::optional<std::vector<int64_t>> image_size;
  // npz: the arrays' names (Keras' mnist.npz); npy: the files' stems in `path`.
  std::string x_train = "x_train", y_train = "y_train", x_test = "x_test", y_test = "y_test";
  // csv: a header row, the label column (by name, else by index, -1 the last), and
  // the shape each row's features form (empty: a flat vector).
  bool csv_header = true;
  std::string label_column;
  int label_index = -1;
  std::vector<int64_t> csv_shape;

  // Declared preprocessing, in this order: channel conversion (0: as stored; 1
  // gray, 3 RGB; an image folder converts as it decodes), resize to the model's
  // input (bilinear), then v / scale and per-channel (v - mean) / std, applied as
  // batches are built.
  int channels = 0;
  bool resize = false;
  std::optional<float> scale;  // unset: 255 for images, idx and uint8 arrays, else 1
  std::vector<float> mean, std;
  int64_t validation = 5000;  // first N training examples form the validation split

  bool fashion_mnist() const { return name == "fashion-mnist" && path.empty(); }
};

// Which examples a task uses and how they are labelled.
struct TaskSpec {
  std::string name;                       // for reports: "source", "shirt-vs-sandal", "6-vs-5"
  std::string dataset = "fashion-mnist";  // DatasetSpec::name
  // Multi-class: keep these classes, relabelled by position (Géron's task A).
  std::vector<int32_t> classes;
  // Binary: positive -> 1, negative -> 0. Used when classes is empty.
  std::vector<int32_t> positive, negative;
  int64_t train_size = 0;  // 0: every training example of the task
  enum class Subset { kFirst, kRandom } subset = Subset::kFirst;  // which train_size examples
  // Declared resize of this task's images to the model input (bilinear); without
  // it, a size mismatch is an error.
  std::optional<std::vector<int64_t>> resize_from;

  bool binary() const { return classes.empty(); }
  int num_classes() const { return binary() ? 2 : static_cast<int>(classes.size()); }
};
// Every class the task uses: classes, or positive then negative for a binary task.
std::vector<int32_t> TaskClasses(const TaskSpec& task);

}  // namespace seedproof
