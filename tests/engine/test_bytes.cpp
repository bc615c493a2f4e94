// Bytes: shared without copies; foreign memory released exactly once.
#include "check_main.hpp"

using arcly::Bytes;

START_TEST(copies_share_memory) {
  Bytes a = Bytes::copy_from("hello");
  Bytes b = a;
  ck_assert_ptr_eq(a.data(), b.data());
  ck_assert_int_eq(a.use_count(), 2);
  ck_assert(b.view() == "hello");
  Bytes s = a.slice(1, 3);
  ck_assert(s.view() == "ell");
  ck_assert_ptr_eq(s.data(), a.data() + 1);
  ck_assert(a.slice(10, 3).empty());
}
END_TEST

START_TEST(wrapped_memory_is_released_once_by_the_last_reference) {
  testing::ReleaseCounter rc;
  {
    Bytes a = rc.wrap("camera");
    Bytes b = a.slice(0, 3);
    { Bytes c = a; }
    ck_assert_int_eq(rc.released.load(), 0);
    a = Bytes();
    ck_assert_int_eq(rc.released.load(), 0);
    ck_assert(b.view() == "cam");
  }
  ck_assert_int_eq(rc.released.load(), 1);
}
END_TEST

START_TEST(vectors_are_adopted_without_copy) {
  std::vector<std::uint8_t> v{1, 2, 3};
  const auto* p = v.data();
  Bytes b = Bytes::from_vector(std::move(v));
  ck_assert_ptr_eq(b.data(), p);
  ck_assert_int_eq(b.size(), 3);
}
END_TEST

int main() {
  return testing::run_suite(
      "bytes", {copies_share_memory, wrapped_memory_is_released_once_by_the_last_reference,
                vectors_are_adopted_without_copy});
}
