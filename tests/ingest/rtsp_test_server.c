/* arcly-test-rtsp-server: a real gst-rtsp-server camera for the ingest tests and
 * benchmark, run as its own process so a test can kill it and start it again on
 * the same port (a camera reboot).
 *
 *   arcly-test-rtsp-server PORT [--path /cam] [--user U --password P]
 *                          [--size WxH] [--audio] [--h265] [--cameras N]
 *                          [--file A.mp4 [--file B.mp4]] [--audio-codec aac|opus|pcma]
 *
 * Serves a shared live H.264 (or H.265) test pattern, optionally with AAC audio,
 * at rtsp://127.0.0.1:PORT/cam (or /cam0../camN-1 with --cameras). Prints "ready"
 * once listening. With --user, basic authentication is required. With --file,
 * cameras replay pre-encoded H.264 MP4 files instead (alternating between the
 * files given), which costs the server next to no CPU (benchmarks). */
#include <gst/gst.h>
#include <gst/rtsp-server/rtsp-server.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
  gst_init(&argc, &argv);
  if (argc < 2) {
    fprintf(stderr, "usage: %s PORT [--path P] [--user U --password P] [--size WxH] [--audio] "
                    "[--h265] [--cameras N] [--launch '( ... name=pay0 ... )']\n", argv[0]);
    return 2;
  }
  const char *custom_launch = NULL; /* a whole media launch line (egress-bench's baseline) */
  const char *port = argv[1], *path = "/cam", *user = NULL, *password = NULL, *size = "320x240";
  gboolean audio = FALSE, h265 = FALSE;
  const char *files[2] = {NULL, NULL};
  const char *audio_codec = "aac";
  int nfiles = 0;
  int cameras = 0;
  for (int i = 2; i < argc; i++) {
    if (!strcmp(argv[i], "--path") && i + 1 < argc) path = argv[++i];
    else if (!strcmp(argv[i], "--user") && i + 1 < argc) user = argv[++i];
    else if (!strcmp(argv[i], "--password") && i + 1 < argc) password = argv[++i];
    else if (!strcmp(argv[i], "--size") && i + 1 < argc) size = argv[++i];
    else if (!strcmp(argv[i], "--audio")) audio = TRUE;
    else if (!strcmp(argv[i], "--audio-codec") && i + 1 < argc) { audio = TRUE; audio_codec = argv[++i]; }
    else if (!strcmp(argv[i], "--h265")) h265 = TRUE;
    else if (!strcmp(argv[i], "--cameras") && i + 1 < argc) cameras = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--file") && i + 1 < argc && nfiles < 2) files[nfiles++] = argv[++i];
    else if (!strcmp(argv[i], "--launch") && i + 1 < argc) custom_launch = argv[++i];
    else { fprintf(stderr, "unknown option %s\n", argv[i]); return 2; }
  }
  int w = 320, h = 240;
  if (sscanf(size, "%dx%d", &w, &h) != 2) { fprintf(stderr, "bad --size %s\n", size); return 2; }

  GstRTSPServer *server = gst_rtsp_server_new();
  gst_rtsp_server_set_address(server, "127.0.0.1");
  gst_rtsp_server_set_service(server, port);
  GstRTSPMountPoints *mounts = gst_rtsp_server_get_mount_points(server);

  gchar *video = h265
      ? g_strdup_printf("videotestsrc is-live=true pattern=ball ! video/x-raw,width=%d,height=%d,"
                        "framerate=30/1 ! x265enc tune=zerolatency speed-preset=ultrafast "
                        "key-int-max=30 ! rtph265pay name=pay0 pt=96 config-interval=-1", w, h)
      : g_strdup_printf("videotestsrc is-live=true pattern=ball ! video/x-raw,width=%d,height=%d,"
                        "framerate=30/1 ! x264enc tune=zerolatency speed-preset=ultrafast "
                        "key-int-max=30 bitrate=800 ! rtph264pay name=pay0 pt=96 "
                        "config-interval=-1", w, h);
  const char *audio_chain =
      !strcmp(audio_codec, "opus") ? "audio/x-raw,rate=48000,channels=1 ! opusenc ! rtpopuspay name=pay1 pt=97"
      : !strcmp(audio_codec, "pcma") ? "audio/x-raw,rate=8000,channels=1 ! alawenc ! rtppcmapay name=pay1 pt=8"
      : "audio/x-raw,rate=48000,channels=1 ! avenc_aac ! rtpmp4gpay name=pay1 pt=97";
  gchar *launch = audio
      ? g_strdup_printf("( %s audiotestsrc is-live=true wave=sine ! %s )", video, audio_chain)
      : g_strdup_printf("( %s )", video);
  if (custom_launch) {
    g_free(launch);
    launch = g_strdup(custom_launch);
  }

  GstRTSPAuth *auth = NULL;
  if (user) {
    auth = gst_rtsp_auth_new();
    GstRTSPToken *token = gst_rtsp_token_new(GST_RTSP_TOKEN_MEDIA_FACTORY_ROLE, G_TYPE_STRING,
                                             "camera-user", NULL);
    gchar *basic = gst_rtsp_auth_make_basic(user, password ? password : "");
    gst_rtsp_auth_add_basic(auth, basic, token);
    g_free(basic);
    gst_rtsp_token_unref(token);
    gst_rtsp_server_set_auth(server, auth);
  }
  int n = cameras > 0 ? cameras : 1;
  for (int c = 0; c < n; c++) {
    GstRTSPMediaFactory *factory = gst_rtsp_media_factory_new();
    if (nfiles > 0) {
      gchar *file_launch = g_strdup_printf(
          "( filesrc location=%s ! qtdemux ! h264parse ! rtph264pay name=pay0 pt=96 "
          "config-interval=-1 )", files[c % nfiles]);
      gst_rtsp_media_factory_set_launch(factory, file_launch);
      g_free(file_launch);
    } else {
      gst_rtsp_media_factory_set_launch(factory, launch);
    }
    gst_rtsp_media_factory_set_shared(factory, TRUE);
    gst_rtsp_media_factory_set_latency(factory, 0);
    if (user) {
      gst_rtsp_media_factory_add_role(factory, "camera-user", GST_RTSP_PERM_MEDIA_FACTORY_ACCESS,
                                      G_TYPE_BOOLEAN, TRUE, GST_RTSP_PERM_MEDIA_FACTORY_CONSTRUCT,
                                      G_TYPE_BOOLEAN, TRUE, NULL);
    }
    gchar *mount = cameras > 0 ? g_strdup_printf("%s%d", path, c) : g_strdup(path);
    gst_rtsp_mount_points_add_factory(mounts, mount, factory);
    g_free(mount);
  }
  g_object_unref(mounts);
  if (gst_rtsp_server_attach(server, NULL) == 0) {
    fprintf(stderr, "cannot listen on 127.0.0.1:%s\n", port);
    return 1;
  }
  printf("ready\n");
  fflush(stdout);
  GMainLoop *loop = g_main_loop_new(NULL, FALSE);
  g_main_loop_run(loop);
  return 0;
}
