// Package layer is the layer store: image layers extracted to directories
// that overlayfs stacks as lower layers, with the metadata to rebuild each
// layer's exact tar stream.
//
// The life of a layer: Ingest starts an Ingestion in a fresh directory under
// tmp/. Apply streams the layer blob into it: the compressed bytes are
// digested, decompressed (gzip, zstd or none), digested again (the diffID),
// recorded by tar-split, and extracted entry by entry, with whiteouts
// converted to overlayfs's form and hostile entries refused. Written data is
// pushed to disk in small steps and dropped from the page cache, so a pull
// never floods memory. Commit checks both digests, makes the files durable,
// renames the directory into place, syncs the parent directory, and only
// then records the layer in the metadata database.
//
// Until it is committed, a layer is not visible: an Ingestion has no read
// side, Get and List know only committed layers, and Open removes every
// directory under tmp/ and every layer directory the database does not
// record. A crash or power cut at any instant therefore leaves the layer
// whole and verified, or absent.
package layer
