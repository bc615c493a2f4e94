#include "arcly/bytes.hpp"

#include <algorithm>
#include <cstring>

namespace arcly {

Bytes Bytes::copy_from(const void* data, std::size_t size) {
  if (size == 0) return {};
  std::shared_ptr<std::uint8_t[]> buf(new std::uint8_t[size]);
  std::memcpy(buf.get(), data, size);
  const std::uint8_t* p = buf.get();
  return Bytes(std::shared_ptr<const void>(std::move(buf), p), p, size);
}

Bytes Bytes::from_vector(std::vector<std::uint8_t> bytes) {
  if (bytes.empty()) return {};
  auto owner = std::make_shared<const std::vector<std::uint8_t>>(std::move(bytes));
  const std::uint8_t* p = owner->data();
  const std::size_t n = owner->size();
  return Bytes(std::move(owner), p, n);
}

Bytes Bytes::from_static(std::string_view text) {
  const auto* p = reinterpret_cast<const std::uint8_t*>(text.data());
  // A non-owning shared_ptr still gives use_count() a meaning.
  return Bytes(std::shared_ptr<const void>(p, [](const void*) {}), p, text.size());
}

Bytes Bytes::wrap(const void* data, std::size_t size, ReleaseFn release, void* context) {
  std::shared_ptr<void> owner(context, release);
  return Bytes(std::shared_ptr<const void>(std::move(owner), data),
               static_cast<const std::uint8_t*>(data), size);
}

Bytes Bytes::slice(std::size_t offset, std::size_t length) const {
  offset = std::min(offset, size_);
  length = std::min(length, size_ - offset);
  return Bytes(owner_, data_ + offset, length);
}

}  // namespace arcly
