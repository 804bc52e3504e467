// The unchanged openai Node SDK (7.55.0, package-lock.json) against DreamRelay's /v1/videos:
// create, poll as the server's openai-poll-after-ms says (7.55 has no videos.createAndPoll nor any
// video poll helper: only the Python SDK has them), then downloadContent of the video and the thumbnail,
// then edit({video: {id}}) (sent as a video[id] part), polled the same way. Prints one JSON line.
const fs = require('fs');
const OpenAI = require('openai');
const { toFile } = require('openai');
const [baseURL, apiKey, outDir] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0 });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function pollUntilDone(video) {
  let polls = 0;
  while (video.status === 'queued' || video.status === 'in_progress') {
    const { data, response } = await client.videos.retrieve(video.id).withResponse();
    video = data;
    polls += 1;
    const hint = Number(response.headers.get('openai-poll-after-ms') || 1000);
    if (video.status === 'queued' || video.status === 'in_progress') await sleep(hint);
  }
  return { video, polls };
}

const createAndPoll = async (params) => pollUntilDone(await client.videos.create(params));

(async () => {
  const png = fs.readFileSync(outDir + '/frame.png');
  const { video, polls } = await createAndPoll({
    prompt: 'a paper boat', model: 'ray-2', seconds: '5', size: '960x540',
    input_reference: await toFile(png, 'frame.png', { type: 'image/png' }),
  });
  const content = await client.videos.downloadContent(video.id);
  fs.writeFileSync(outDir + '/video.mp4', Buffer.from(await content.arrayBuffer()));
  const thumb = await client.videos.downloadContent(video.id, { variant: 'thumbnail' });
  fs.writeFileSync(outDir + '/thumbnail.jpg', Buffer.from(await thumb.arrayBuffer()));
  const edited = await pollUntilDone(
    await client.videos.edit({ prompt: 'the boat in the snow', video: { id: video.id } }),
  );
  const out = { video, polls, edited: edited.video };
  out.helpers = ['createAndPoll', 'poll'].filter((name) => typeof client.videos[name] === 'function');
  try {
    await client.videos.retrieve('00000000-0000-4000-8000-000000000000');
  } catch (e) {
    out.not_found = e.constructor.name + ' ' + e.status;
  }
  console.log(JSON.stringify(out));
})().catch((e) => { console.error(e); process.exit(1); });
