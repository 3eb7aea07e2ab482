// TLSServer is the reference for jdk_test.go: a JDK TLS server that enables every protocol and every
// cipher suite its JDK has, so that only jdk.tls.disabledAlgorithms (given with
// -Djava.security.properties=FILE) decides what it accepts.
//
// Usage: java TLSServer NAME=KEYSTORE.p12 [NAME=KEYSTORE.p12 ...]   (PKCS12, password "changeit")
//
// It listens on a free loopback port per keystore and prints, on stdout:
//   DISABLED <the jdk.tls.disabledAlgorithms in force>
//   SUITES <every supported suite, comma-separated>
//   READY NAME=PORT ...
// and serves until its stdin closes.
import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.security.KeyStore;
import java.security.Security;
import java.util.ArrayList;
import java.util.List;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLServerSocket;
import javax.net.ssl.SSLSocket;

public class TLSServer {
    public static void main(String[] args) throws Exception {
        char[] password = "changeit".toCharArray();
        StringBuilder ready = new StringBuilder("READY");
        List<SSLServerSocket> sockets = new ArrayList<>();
        for (String arg : args) {
            String[] kv = arg.split("=", 2);
            KeyStore ks = KeyStore.getInstance("PKCS12");
            try (InputStream in = new FileInputStream(kv[1])) {
                ks.load(in, password);
            }
            // The default key manager, as a product's server would use it.
            KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
            kmf.init(ks, password);
            SSLContext ctx = SSLContext.getInstance("TLS");
            ctx.init(kmf.getKeyManagers(), null, null);
            SSLServerSocket ss = (SSLServerSocket) ctx.getServerSocketFactory()
                    .createServerSocket(0, 256, InetAddress.getLoopbackAddress());
            ss.setEnabledProtocols(ss.getSupportedProtocols());
            ss.setEnabledCipherSuites(ss.getSupportedCipherSuites());
            ready.append(' ').append(kv[0]).append('=').append(ss.getLocalPort());
            sockets.add(ss);
        }
        System.out.println("DISABLED " + Security.getProperty("jdk.tls.disabledAlgorithms"));
        System.out.println("SUITES " + String.join(",", sockets.get(0).getSupportedCipherSuites()));
        System.out.println(ready);
        System.out.flush();
        for (SSLServerSocket ss : sockets) {
            Thread t = new Thread(() -> serve(ss));
            t.setDaemon(true);
            t.start();
        }
        while (System.in.read() >= 0) {
        }
        System.exit(0);
    }

    // serve answers each connection's ClientHello; the Go prober hangs up after the ServerHello.
    static void serve(SSLServerSocket ss) {
        while (true) {
            SSLSocket s;
            try {
                s = (SSLSocket) ss.accept();
            } catch (IOException e) {
                return;
            }
            Thread t = new Thread(() -> {
                try (SSLSocket c = s) {
                    c.setSoTimeout(10000);
                    c.startHandshake();
                } catch (Exception e) {
                    // a refused hello, or the prober hanging up: both expected
                }
            });
            t.setDaemon(true);
            t.start();
        }
    }
}
