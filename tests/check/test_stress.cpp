// Scale and lifecycle: 50 subscribers on one stream, and 200 publish/subscribe
// start-stop cycles that must leave nothing behind (run under ASan/LSan in CI:
// any leaked frame, buffer or subscription shows up there).
#include <string>
#include <vector>

#include "arcly/engine.hpp"
#include "engine_registry.hpp"
#include "helpers.hpp"

GST_START_TEST(test_fifty_subscribers) {
  GstElement* pub = th::launch(th::h264_camera(15) + "! arclysink name=pub stream=live/many");
  th::play(pub);
  th::wait_stat(th::by_name(pub, "pub"), "frames", 5);
  std::vector<GstElement*> subs;
  for (int i = 0; i < 50; ++i) {
    GstElement* s = th::launch("arclysrc name=src stream=live/many ! fakesink sync=false");
    th::play(s);
    subs.push_back(s);
  }
  th::wait_stat(th::by_name(pub, "pub"), "subscribers", 50);
  for (GstElement* s : subs) th::wait_stat(th::by_name(s, "src"), "frames", 20);
  for (GstElement* s : subs) {
    th::assert_no_error(s);
    th::stop(s);
  }
  th::stop(pub);
}
GST_END_TEST;

GST_START_TEST(test_start_stop_cycles) {
  const arcly::StreamKey key("live", "cycle");
  auto engine = arcly::gst::engine_for("cycles");
  for (int i = 0; i < 200; ++i) {
    GstElement* pub = th::launch(
        "videotestsrc is-live=true ! video/x-raw,width=16,height=16,framerate=200/1 ! "
        "arclysink engine=cycles stream=live/cycle");
    GstElement* sub = th::launch(
        "arclysrc name=src engine=cycles stream=live/cycle wait=5000 ! fakesink sync=false");
    // Alternate who comes first: the subscriber waiting for the publisher, or joining it.
    if (i % 2) {
      th::play(sub);
      th::play(pub);
    } else {
      th::play(pub);
      th::play(sub);
    }
    th::wait_stat(th::by_name(sub, "src"), "frames", 2);
    if (i % 3 == 0) {
      th::stop(pub);
      th::stop(sub);
    } else {
      th::stop(sub);
      th::stop(pub);
    }
    fail_unless(engine->find_stream(key) == nullptr, "cycle %d left the stream registered", i);
  }
  fail_unless(engine->streams().empty());
}
GST_END_TEST;

static Suite* arcly_stress_suite() {
  Suite* s = suite_create("arcly-stress");
  TCase* tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_fifty_subscribers);
  tcase_add_test(tc, test_start_stop_cycles);
  return s;
}

GST_CHECK_MAIN(arcly_stress)
