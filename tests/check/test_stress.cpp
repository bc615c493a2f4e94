// Scale and lifecycle: 50 subscribers on one stream, 200 publish/subscribe
// start-stop cycles that must leave nothing behind, and subscribers joining,
// switching and leaving all at once. Run under ASan/LSan in CI (any leaked frame,
// buffer or subscription shows up there) and under ThreadSanitizer (the churn is
// the interleaving a race needs).
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

// Waits (bounded) for `sub`'s arcly-switched message to `to`, skipping other element messages.
static void wait_switched(GstElement* sub, const std::string& to) {
  for (;;) {
    GstMessage* m = th::wait_message(sub, GST_MESSAGE_ELEMENT, 20);
    fail_unless(m != nullptr, "no arcly-switched message to %s", to.c_str());
    const GstStructure* st = gst_message_get_structure(m);
    const bool done =
        gst_structure_has_name(st, "arcly-switched") && to == gst_structure_get_string(st, "to");
    gst_message_unref(m);
    if (done) return;
  }
}

// Subscribers join, switch between two live publishers and leave while the others
// stream: every switch (48, each confirmed by its arcly-switched message) runs on
// the subscriber's streaming thread against the application thread's property
// change, every leave against the publisher's fan-out. Whoever is left at the end still receives
// frames, without error.
GST_START_TEST(test_join_switch_leave_churn) {
  const std::string keys[2] = {"live/churn-a", "live/churn-b"};
  GstElement* pubs[2];
  for (int p = 0; p < 2; ++p) {
    pubs[p] = th::launch(th::h264_camera(10) + "! arclysink name=pub stream=" + keys[p]);
    th::play(pubs[p]);
    th::wait_stat(th::by_name(pubs[p], "pub"), "frames", 3);
  }
  auto join = [&](int i) {
    GstElement* s =
        th::launch("arclysrc name=src stream=" + keys[i % 2] + " ! fakesink sync=false");
    th::play(s);
    return s;
  };
  std::vector<GstElement*> subs;
  std::vector<int> watching;  // index into keys, per subscriber
  for (int i = 0; i < 12; ++i) {
    subs.push_back(join(i));
    watching.push_back(i % 2);
  }
  for (int round = 0; round < 48; ++round) {
    const size_t switching = static_cast<size_t>(round) % subs.size();
    watching[switching] ^= 1;
    g_object_set(th::by_name(subs[switching], "src"), "stream", keys[watching[switching]].c_str(),
                 nullptr);
    wait_switched(subs[switching], keys[watching[switching]]);
    if (round % 4 == 3) {
      const size_t leaving = static_cast<size_t>(round * 7) % subs.size();
      th::assert_no_error(subs[leaving]);
      th::stop(subs[leaving]);
      subs[leaving] = join(round);
      watching[leaving] = round % 2;
    }
  }
  for (GstElement* s : subs) {
    GstElement* src = th::by_name(s, "src");
    th::wait_stat(src, "frames", th::wait_stat(src, "frames", 0) + 10);
    th::assert_no_error(s);
    th::stop(s);
  }
  for (GstElement* p : pubs) th::stop(p);
}
GST_END_TEST;

static Suite* arcly_stress_suite() {
  Suite* s = suite_create("arcly-stress");
  TCase* tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_fifty_subscribers);
  tcase_add_test(tc, test_start_stop_cycles);
  tcase_add_test(tc, test_join_switch_leave_churn);
  return s;
}

GST_CHECK_MAIN(arcly_stress)
