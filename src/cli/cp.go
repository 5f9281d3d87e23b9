package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/balena-os/balena-engine/src/client"
	units "github.com/docker/go-units"
)

// docker cp's errors, in its words.
var (
	errCannotCopyDir = errors.New("cannot copy directory")
	errDirNotExists  = errors.New("no such directory")
	errNotDirectory  = errors.New("not a directory")
)

// runCp copies between a container and the local file system through the
// archive API, with docker cp's rules for where things land (planCopy):
// the container's side is read (GET) or written (PUT) as a tar, "-" is a
// tar on stdin or stdout.
func runCp(ctx context.Context, e *env, args []string) error {
	fs := e.flags("cp", "cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\tbalena-engine cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH")
	archive := fs.BoolP("archive", "a", false, "archive mode (copy all uid/gid information)")
	follow := fs.BoolP("follow-link", "L", false, "always follow symbol link in SRC_PATH")
	quiet := fs.BoolP("quiet", "q", false, "suppress progress output during copy (it is without a terminal)")
	if err := parseExact(fs, args, 2); err != nil {
		return err
	}
	src, dst := fs.Arg(0), fs.Arg(1)
	if src == "" {
		return errors.New("source can not be empty")
	}
	if dst == "" {
		return errors.New("destination can not be empty")
	}
	srcCtr, srcPath := splitCpArg(src)
	dstCtr, dstPath := splitCpArg(dst)
	switch {
	case srcCtr != "" && dstCtr != "":
		return errors.New("copying between containers is not supported")
	case srcCtr == "" && dstCtr == "":
		return errors.New("must specify at least one container source")
	}
	c, err := e.connect()
	if err != nil {
		return err
	}
	report := func(n int64, to string) {
		if !*quiet && isTerminal(e.stderr) {
			fmt.Fprintf(e.stderr, "Successfully copied %s to %s\n", units.HumanSize(float64(n)), to)
		}
	}
	if srcCtr != "" {
		return copyFromContainer(ctx, e, c, srcCtr, srcPath, dstPath, *follow, *archive, report)
	}
	return copyToContainer(ctx, e, c, srcPath, dstCtr, dstPath, *follow, *archive, report)
}

// splitCpArg splits CONTAINER:PATH; a path that is absolute, or starts
// with "." ("./a:b"), or has no colon is local.
func splitCpArg(arg string) (container, p string) {
	if filepath.IsAbs(arg) {
		return "", arg
	}
	container, p, ok := strings.Cut(arg, ":")
	if !ok || strings.HasPrefix(container, ".") {
		return "", arg
	}
	return container, p
}

// splitPathDirEntry splits a path into its directory and its last entry,
// keeping a final "." (so "a/." is "a" and "."), as Docker's archive
// package does.
func splitPathDirEntry(p string) (dir, base string) {
	clean := path.Clean(p)
	if path.Base(p) == "." && clean != "." {
		clean += "/."
	}
	return path.Dir(clean), path.Base(clean)
}

// assertsDirectory says whether a path, by its spelling, must be a
// directory: it ends in "/" or "/.".
func assertsDirectory(p string) bool {
	return strings.HasSuffix(p, "/") || path.Base(p) == "."
}

// copyPlan is where a copy lands: the directory the archive is extracted
// in, and the name the copied path takes there ("" for its contents only,
// straight into the directory).
type copyPlan struct{ dir, root string }

// planCopy applies docker cp's rules. The source is a file or a
// directory (srcContents: SRC ends in "/.", its contents are copied, not
// the directory), srcName its name; dst the destination, which exists or
// not (symlinks followed), a directory or not:
//
//   - DEST is a directory: SRC goes into it under its own name (a
//     directory's contents straight into it with "/.").
//   - DEST is a file: a file SRC overwrites it; a directory is an error.
//   - DEST does not exist: it is made, as a copy of SRC (a directory SRC's
//     contents in a directory named DEST); a file SRC with DEST ending in
//     "/" is an error, the directory must exist.
func planCopy(srcIsDir, srcContents bool, srcName, dst string, dstExists, dstIsDir bool) (copyPlan, error) {
	dstDir, dstBase := splitPathDirEntry(dst)
	switch {
	case dstExists && dstIsDir:
		if srcIsDir && srcContents {
			return copyPlan{dst, ""}, nil
		}
		return copyPlan{dst, srcName}, nil
	case dstExists && srcIsDir:
		return copyPlan{}, errCannotCopyDir
	case dstExists:
		return copyPlan{dstDir, dstBase}, nil
	case !srcIsDir && assertsDirectory(dst):
		return copyPlan{}, errDirNotExists
	}
	return copyPlan{dstDir, dstBase}, nil
}

// srcEntry is the name and kind of a SRC path by its spelling: the name
// its copy takes, and whether only its contents are meant ("/." or the
// root).
func srcEntry(p string) (name string, contents bool) {
	_, base := splitPathDirEntry(p)
	if base == "." || base == "/" {
		return "", true
	}
	return base, false
}

// containerPath makes a container path absolute (docker cp's paths are
// relative to the container's root), keeping a final "/" or "/.".
func containerPath(p string) string {
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	return p
}

// localPath makes a local path absolute, keeping a final "/" or "/." that
// says what is meant.
func localPath(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	switch {
	case path.Base(p) == "." && abs != "/":
		abs += "/."
	case strings.HasSuffix(p, "/") && abs != "/":
		abs += "/"
	}
	return abs, nil
}

func copyFromContainer(ctx context.Context, e *env, c *client.Client, ctr, src, dst string, follow, archive bool, report func(int64, string)) error {
	src = containerPath(src)
	name, contents := srcEntry(src)
	fetch := src
	if follow {
		// -L: the link's target is copied, under the link's name.
		if st, err := c.ContainerStatPath(ctx, ctr, src); err == nil && st.Mode&os.ModeSymlink != 0 {
			fetch = st.LinkTarget
			if !path.IsAbs(fetch) {
				dir, _ := splitPathDirEntry(src)
				fetch = path.Join(dir, fetch)
			}
		}
	}
	if dst != "-" {
		var err error
		if dst, err = localPath(dst); err != nil {
			return err
		}
		if dir := filepath.Dir(filepath.Clean(dst)); dir != "" {
			if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("invalid output path: directory %q does not exist", dir)
			}
		}
	}
	body, st, err := c.CopyFromContainer(ctx, ctr, fetch)
	if err != nil {
		return err
	}
	defer body.Close()
	in := &countingReader{r: body}
	if dst == "-" {
		_, err := io.Copy(e.stdout, in)
		return err
	}
	dstPath, exists, isDir, err := localDest(dst)
	if err != nil {
		return err
	}
	plan, err := planCopy(st.Mode.IsDir(), contents && st.Mode.IsDir(), name, dstPath, exists, isDir)
	if err != nil {
		return err
	}
	if err := extractTar(in, plan.dir, &rebase{root: plan.root}, archive); err != nil {
		return err
	}
	report(in.n, dst)
	return nil
}

// localDest describes the local DEST as Docker's archive package does: a
// symlink is followed (a dangling one is where the copy is made), and a
// DEST that does not exist needs its parent directory.
func localDest(p string) (resolved string, exists, isDir bool, err error) {
	orig := p
	for n := 0; ; n++ {
		fi, err := os.Lstat(p)
		if err == nil && fi.Mode()&os.ModeSymlink == 0 {
			return p, true, fi.IsDir(), nil
		}
		if err == nil {
			if n >= 10 {
				return "", false, false, errors.New("too many symlinks in " + orig)
			}
			t, err := os.Readlink(p)
			if err != nil {
				return "", false, false, err
			}
			if !filepath.IsAbs(t) {
				dir, _ := splitPathDirEntry(p)
				t = filepath.Join(dir, t)
			}
			p = t
			continue
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", false, false, err
		}
		parent, _ := splitPathDirEntry(p)
		pfi, err := os.Stat(parent)
		if err != nil {
			return "", false, false, err
		}
		if !pfi.IsDir() {
			return "", false, false, errNotDirectory
		}
		return p, false, false, nil
	}
}

func copyToContainer(ctx context.Context, e *env, c *client.Client, src, ctr, dst string, follow, archive bool, report func(int64, string)) error {
	dst = containerPath(dst)
	st, err := c.ContainerStatPath(ctx, ctr, dst)
	if err == nil && st.Mode&os.ModeSymlink != 0 {
		// A symlink DEST is its target, as in docker.
		t := st.LinkTarget
		if !path.IsAbs(t) {
			dir, _ := splitPathDirEntry(dst)
			t = path.Join(dir, t)
		}
		dst = t
		st, err = c.ContainerStatPath(ctx, ctr, dst)
	}
	exists := err == nil
	isDir := exists && st.Mode.IsDir()
	if exists && !isDir && !st.Mode.IsRegular() {
		return fmt.Errorf("destination \"%s:%s\" must be a directory or a regular file", ctr, dst)
	}
	q := url.Values{"noOverwriteDirNonDir": {"true"}}
	if archive {
		q.Set("copyUIDGID", "true")
	}
	if src == "-" {
		if !isDir {
			return fmt.Errorf("destination \"%s:%s\" must be a directory", ctr, dst)
		}
		return c.CopyToContainer(ctx, ctr, dst, e.stdin, q)
	}
	local, err := localPath(src)
	if err != nil {
		return err
	}
	name, contents := srcEntry(local)
	resolved, err := localSource(local, follow)
	if err != nil {
		return err
	}
	fi, err := os.Lstat(resolved)
	if err != nil {
		return err
	}
	if name == "" {
		name = filepath.Base(resolved)
	}
	plan, err := planCopy(fi.IsDir(), contents && fi.IsDir(), name, dst, exists, isDir)
	if err != nil {
		return err
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeTar(pw, resolved, plan.root)) }()
	in := &countingReader{r: pr}
	err = c.CopyToContainer(ctx, ctr, plan.dir, in, q)
	pr.CloseWithError(errors.New("copy ended")) // the writer stops if the daemon did first
	if err != nil {
		return err
	}
	report(in.n, ctr+":"+dst)
	return nil
}

// localSource resolves a local SRC as docker does: the symlinks of its
// directory always, its last entry only with -L.
func localSource(p string, follow bool) (string, error) {
	if follow {
		return filepath.EvalSymlinks(p)
	}
	dir, base := filepath.Split(p)
	rdir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", err
	}
	return filepath.Join(rdir, base), nil
}

// countingReader counts what is read through it, for the report.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
