package image

import (
	"reflect"
	"strings"
	"testing"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
)

func TestApplyChanges(t *testing.T) {
	var cfg dockerspec.DockerOCIImageConfig
	err := applyChanges(&cfg, []string{
		`CMD ["sh", "-c", "echo hi"]`, `ENTRYPOINT /bin/init`, `ENV A=1 B="two words"`, `ENV C three`,
		`LABEL x=y`, `EXPOSE 80 53/udp`, `VOLUME ["/data"]`, `USER nobody`, `WORKDIR /srv`, `STOPSIGNAL SIGINT`,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg.Cmd, []string{"sh", "-c", "echo hi"}) ||
		!reflect.DeepEqual(cfg.Entrypoint, []string{"/bin/sh", "-c", "/bin/init"}) ||
		!reflect.DeepEqual(cfg.Env, []string{"A=1", "B=two words", "C=three"}) ||
		cfg.Labels["x"] != "y" || len(cfg.ExposedPorts) != 2 || cfg.User != "nobody" || cfg.WorkingDir != "/srv" ||
		cfg.StopSignal != "SIGINT" {
		t.Errorf("config = %+v", cfg)
	}
	for _, bad := range []string{"RUN make", `CMD ["unterminated`, "ENV =x", `LABEL a="b`} {
		if err := applyChanges(&cfg, []string{bad}); err == nil || !strings.Contains(err.Error(), "invalid change") {
			t.Errorf("%q: err = %v", bad, err)
		}
	}
}
