{
  "targets": [
    {
      "target_name": "gptmed_native",
      "sources": ["gptmed_native.cc"],
      "cflags_cc": ["-O3", "-std=c++17", "-fno-math-errno"],
      "cflags_cc!": ["-fno-exceptions"],
      "libraries": ["-ldl", "-lpthread"],
      "xcode_settings": { "OTHER_CPLUSPLUSFLAGS": ["-O3", "-std=c++17"] }
    }
  ]
}
