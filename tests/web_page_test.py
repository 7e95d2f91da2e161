#!/usr/bin/python3
"""The link shortener's web page in a real browser: headless Chromium driven by Selenium
against a 3-node cluster on 127.0.0.1 (docs/link-shortener.md, "The web page").

  - a link shortened through the form on n1, by keyboard, shows its short URL;
  - the link and its redirect count appear on n3's page;
  - following the short URL on n3 redirects to the target, and the count rises;
  - a killed node shows as down on n3's page, and as up again after its restart;
  - a stored URL holding markup (https://x/"><script>...) is shown as text and runs nothing.

A screenshot of every step is saved in the directory given as the second argument (a failed
run leaves them there for inspection).

usage: web_page_test.py PATH/TO/link-shortener SCREENSHOT_DIR
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

SECRET = "web-page-test-secret-0123456789"
PROBE = 'https://x/"><script>alert(1)</script>'


class Node:
    """One link-shortener process; waits for its ready line."""

    def __init__(self, binary, name, data_dir, secret_file, seeds=None, listen="127.0.0.1:0"):
        args = [binary, "--name", name, "--http", "127.0.0.1:0", "--listen", listen,
                "--data-dir", data_dir, "--secret-file", secret_file, "--log-level", "warn",
                "--sync-interval", "50"]
        if seeds:
            args += ["--seeds", seeds]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if ": http 127.0.0.1:" not in line:
            raise RuntimeError(f"{name} did not start: {line!r}")
        self.http = int(line.split(": http 127.0.0.1:")[1].split(",")[0])
        self.cluster = line.rsplit("cluster ", 1)[1].strip()
        self.url = f"http://127.0.0.1:{self.http}"

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=10)


def eventually(what, check, limit=20.0):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:  # the page is being re-rendered: look again
            pass
        time.sleep(0.1)
    raise AssertionError(f"not within {limit} s: {what}")


def main():
    binary, shots = sys.argv[1], sys.argv[2]
    shutil.rmtree(shots, ignore_errors=True)
    os.makedirs(shots)
    root = tempfile.mkdtemp(prefix="deltacrdt-web-")
    secret = os.path.join(root, "secret")
    with open(secret, "w") as f:
        f.write(SECRET + "\n")
    os.chmod(secret, 0o600)
    dirs = {n: os.path.join(root, n) for n in ("n1", "n2", "n3")}
    for d in dirs.values():
        os.makedirs(d)
    nodes = {}
    driver = None
    step = [0]

    def shot(name):
        step[0] += 1
        driver.save_screenshot(os.path.join(shots, f"{step[0]:02d}-{name}.png"))

    try:
        nodes["n1"] = Node(binary, "n1", dirs["n1"], secret)
        nodes["n2"] = Node(binary, "n2", dirs["n2"], secret, seeds=nodes["n1"].cluster)
        nodes["n3"] = Node(binary, "n3", dirs["n3"], secret, seeds=nodes["n1"].cluster)
        n1, n3 = nodes["n1"], nodes["n3"]

        options = webdriver.ChromeOptions()
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--window-size=1200,1000", "--no-first-run", "--disable-extensions"):
            options.add_argument(arg)
        options.binary_location = "/usr/bin/chromium"
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        driver.set_page_load_timeout(20)

        def member_status(name):
            row = driver.find_element(By.CSS_SELECTOR, f'#members tr[data-member="{name}"]')
            return row.get_attribute("data-status")

        # 1. Shorten on n1 through the form, by keyboard: the field has a label, Enter submits.
        driver.get(n1.url + "/")
        eventually("n1's page names its node", lambda: driver.find_element(By.ID, "node").text == "n1")
        label = driver.find_element(By.CSS_SELECTOR, 'label[for="url"]')
        assert label.text == "Long URL", label.text
        target = n1.url + "/_health"  # a page on loopback: following the link leaves nothing
        field = driver.find_element(By.ID, "url")
        field.send_keys(target + Keys.ENTER)
        short = driver.find_element(By.ID, "short-url")
        eventually("the short URL is shown", lambda: short.is_displayed() and short.text)
        code = short.text.rsplit("/", 1)[1]
        assert short.text == f"{n1.url}/{code}", short.text
        assert driver.switch_to.active_element == driver.find_element(By.ID, "copy")
        shot("shortened-on-n1")

        # 2. The link and its count on n3's page; every member up, all agreeing.
        driver.get(n3.url + "/")
        row = f'#links tr[data-code="{code}"]'
        eventually("the link is listed on n3",
                   lambda: driver.find_element(By.CSS_SELECTOR, row + " td.target").text == target)
        assert driver.find_element(By.CSS_SELECTOR, row + " td.redirects").text == "0"
        eventually("n3 lists n1 and n2 up", lambda: member_status("n1") == "up" and
                   member_status("n2") == "up")
        eventually("the members agree", lambda: driver.find_element(By.ID, "agreement").text
                   .startswith("Every member up holds the same"))
        shot("listed-on-n3")

        # 3. Following the short URL on n3 redirects to the target; the count rises.
        driver.find_element(By.CSS_SELECTOR, row + " a").click()
        eventually("the redirect reached the target", lambda: driver.current_url == target)
        assert "ok" in driver.find_element(By.TAG_NAME, "body").text
        shot("followed")
        driver.get(n3.url + "/")
        eventually("the count is 1 on n3",
                   lambda: driver.find_element(By.CSS_SELECTOR, row + " td.redirects").text == "1")
        shot("counted")

        # 4. n2 killed: down on n3's page; restarted with its data: up again.
        n2_cluster = nodes["n2"].cluster
        nodes["n2"].kill()
        eventually("n2 shows down", lambda: member_status("n2") == "down")
        shot("n2-down")
        nodes["n2"] = Node(binary, "n2", dirs["n2"], secret, seeds=n1.cluster, listen=n2_cluster)
        eventually("n2 shows up again", lambda: member_status("n2") == "up")
        shot("n2-up")

        # 5. A stored URL holding markup is text: listed as written, no script ran.
        driver.get(n1.url + "/")
        eventually("n1's page is back", lambda: driver.find_element(By.ID, "node").text == "n1")
        scripts = len(driver.find_elements(By.TAG_NAME, "script"))
        driver.find_element(By.ID, "url").send_keys(PROBE + Keys.ENTER)
        short = driver.find_element(By.ID, "short-url")
        eventually("the probe's short URL is shown", lambda: short.is_displayed() and
                   short.text.rsplit("/", 1)[1] != code)
        probe_code = short.text.rsplit("/", 1)[1]
        probe_row = f'#links tr[data-code="{probe_code}"]'
        eventually("the probe is listed as text",
                   lambda: driver.find_element(By.CSS_SELECTOR, probe_row + " td.target").text == PROBE)
        try:
            alert = driver.switch_to.alert
            raise AssertionError(f"a script ran: alert {alert.text!r}")
        except NoAlertPresentException:
            pass
        assert len(driver.find_elements(By.TAG_NAME, "script")) == scripts
        driver.get(n3.url + "/")
        eventually("the probe is listed as text on n3",
                   lambda: driver.find_element(By.CSS_SELECTOR, probe_row + " td.target").text == PROBE)
        try:
            driver.switch_to.alert
            raise AssertionError("a script ran on n3")
        except NoAlertPresentException:
            pass
        shot("markup-is-text")
        print(f"web page: 5 steps passed; screenshots in {shots}")
        return 0
    finally:
        if driver is not None:
            driver.quit()
        for n in nodes.values():
            n.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
