// arcly::Bytes — an immutable, reference-counted view of bytes.
//
// Contract:
// - A Bytes never changes what it points at; copies share the same memory
//   (one atomic increment, no byte copy).
// - The memory may belong to someone else: `wrap` takes a release callback that
//   runs exactly once, when the last Bytes sharing it goes away. This is how a
//   GstBuffer travels through the engine without a copy.
// - Safe to copy and destroy from any thread; the bytes themselves are read-only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace arcly {

class Bytes {
 public:
  // Called once with `context` when the last reference is dropped.
  using ReleaseFn = void (*)(void* context);

  Bytes() = default;

  // Copies `size` bytes into a new allocation owned by the Bytes.
  static Bytes copy_from(const void* data, std::size_t size);
  static Bytes copy_from(std::string_view text) { return copy_from(text.data(), text.size()); }
  // Takes ownership of a vector without copying its contents.
  static Bytes from_vector(std::vector<std::uint8_t> bytes);
  // Memory with static lifetime: never released.
  static Bytes from_static(std::string_view text);
  // Memory owned elsewhere: `release(context)` runs when the last reference goes.
  static Bytes wrap(const void* data, std::size_t size, ReleaseFn release, void* context);

  const std::uint8_t* data() const { return data_; }
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  std::span<const std::uint8_t> span() const { return {data_, size_}; }
  std::string_view view() const { return {reinterpret_cast<const char*>(data_), size_}; }

  // A sub-range sharing the same owner (no copy). Clamped to the available bytes.
  Bytes slice(std::size_t offset, std::size_t length) const;

  // Number of Bytes values sharing the owner (0 for an empty Bytes); for tests and stats.
  long use_count() const { return owner_.use_count(); }

 private:
  Bytes(std::shared_ptr<const void> owner, const std::uint8_t* data, std::size_t size)
      : owner_(std::move(owner)), data_(data), size_(size) {}

  std::shared_ptr<const void> owner_;
  const std::uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace arcly
