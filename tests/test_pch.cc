// Builds the precompiled header that every test file reuses (see CMakeLists.txt).
