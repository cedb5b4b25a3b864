// oci/: images, bundles and the runsc client. This file anchors the module's
// library target; the module's code lives in the files beside it.
