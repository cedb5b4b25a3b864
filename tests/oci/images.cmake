# Tests of the image half of oci/: references, digests, layer unpacking, the image store.
# The tests build archives with libarchive's write API, so they link it themselves.
pkg_check_modules(SBX_TEST_LIBARCHIVE REQUIRED IMPORTED_TARGET libarchive)

sbx_add_test(NAME oci_reference_test SOURCES reference_test.cc LIBS sbx_oci)
sbx_add_test(NAME oci_image_digest_test SOURCES image_digest_test.cc LIBS sbx_oci)
