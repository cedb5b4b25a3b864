# Tests of the image half of oci/: references, digests, layer unpacking, the image store.
# The tests build archives with libarchive's write API, so they link it themselves.
pkg_check_modules(SBX_TEST_LIBARCHIVE REQUIRED IMPORTED_TARGET libarchive)

sbx_add_test(NAME oci_reference_test SOURCES reference_test.cc LIBS sbx_oci)
sbx_add_test(NAME oci_image_digest_test SOURCES image_digest_test.cc LIBS sbx_oci)

add_library(sbx_oci_image_test_util STATIC image_test_util.cc)
target_include_directories(sbx_oci_image_test_util PRIVATE ${PROJECT_SOURCE_DIR})
target_compile_definitions(sbx_oci_image_test_util PRIVATE
  SBX_TEST_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
target_link_libraries(sbx_oci_image_test_util
  PUBLIC sbx_oci sbx_common GTest::gtest PkgConfig::SBX_TEST_LIBARCHIVE)

sbx_add_test(NAME oci_unpack_test SOURCES unpack_test.cc LIBS sbx_oci_image_test_util)
sbx_add_test(NAME oci_image_store_test SOURCES image_store_test.cc image_import_test.cc
             LIBS sbx_oci_image_test_util)
sbx_add_test(NAME oci_credentials_test SOURCES credentials_test.cc LIBS sbx_oci_image_test_util)

# A real registry (docker-registry, skopeo) for tests of the registry client.
pkg_check_modules(SBX_TEST_LIBCRYPTO REQUIRED IMPORTED_TARGET libcrypto)
pkg_check_modules(SBX_TEST_LIBCURL REQUIRED IMPORTED_TARGET libcurl)
add_library(sbx_registry_fixture STATIC registry_fixture.cc)
target_include_directories(sbx_registry_fixture PRIVATE ${PROJECT_SOURCE_DIR})
target_link_libraries(sbx_registry_fixture
  PUBLIC sbx_oci_image_test_util GTest::gtest
  PRIVATE PkgConfig::SBX_TEST_LIBCRYPTO PkgConfig::SBX_TEST_LIBCURL)

sbx_add_test(NAME oci_registry_fixture_test SOURCES registry_fixture_test.cc
             LIBS sbx_registry_fixture)
sbx_add_test(NAME oci_image_pull_test SOURCES image_pull_test.cc LIBS sbx_registry_fixture)
