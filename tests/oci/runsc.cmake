# Runtime half of oci/: command runner, runsc client, probe, bundle, user.
sbx_add_test(NAME oci_runsc_test SOURCES runsc_test.cc LIBS sbx_oci)
sbx_add_test(NAME oci_runsc_command_test SOURCES runsc_command_test.cc LIBS sbx_oci)
sbx_add_test(NAME oci_bundle_test SOURCES bundle_test.cc LIBS sbx_oci)
sbx_add_test(NAME oci_user_test SOURCES user_test.cc LIBS sbx_oci)
sbx_add_test(NAME oci_probe_test SOURCES probe_test.cc LIBS sbx_oci)
sbx_add_test(NAME oci_runsc_probe_test SOURCES runsc_probe_test.cc LIBS sbx_oci LABELS root)
sbx_add_test(NAME oci_runsc_lifecycle_test SOURCES runsc_lifecycle_test.cc LIBS sbx_oci LABELS root)
